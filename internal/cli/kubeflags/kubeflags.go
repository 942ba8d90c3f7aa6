// Package kubeflags is how every `cafe` verb group reaches the API server:
// kubectl's connection flags, and the client and namespace they give.
package kubeflags

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/scheme"
)

// Flags are kubectl's connection flags (--kubeconfig, --context,
// --namespace, --server, --token, ...), as *genericclioptions.ConfigFlags
// provides them; an interface so tests can substitute their own.
type Flags interface {
	AddFlags(flags *pflag.FlagSet)
	ToRESTConfig() (*rest.Config, error)
	ToRawKubeConfigLoader() clientcmd.ClientConfig
}

// New returns kubectl's own connection flags.
func New() Flags {
	return genericclioptions.NewConfigFlags(true)
}

// ClientAndNamespace returns the client to use (override, when set: tests
// point it at their API server) and the namespace the flags select, with
// errors that say what to pass.
func ClientAndNamespace(flags Flags, override client.Client) (client.Client, string, error) {
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("finding the namespace in the kubeconfig: %w (pass --namespace, or --kubeconfig/--context)", err)
	}
	if override != nil {
		return override, ns, nil
	}
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading the kubeconfig: %w (pass --kubeconfig or set KUBECONFIG)", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, "", fmt.Errorf("connecting to the API server at %s: %w", cfg.Host, err)
	}
	return c, ns, nil
}

// Get reads the object named name in namespace into obj, with an error that
// names it by kind and says how to list what exists (listCommand, e.g.
// "cafe app list -n ns").
func Get(ctx context.Context, c client.Client, obj client.Object, kind, namespace, name, listCommand string) error {
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s/%s not found: check the name and --namespace (list them with: %s)", kind, namespace, name, listCommand)
	case err != nil:
		return fmt.Errorf("reading %s %s/%s: %w", kind, namespace, name, err)
	}
	return nil
}
