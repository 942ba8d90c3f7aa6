// Package kubeflags is how every `cafe` verb group reaches the API server:
// kubectl's connection flags, the client and namespace they give, and the
// reads every verb starts with, with messages that say what to check.
package kubeflags

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
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

// Options carry what every verb group needs: the streams it writes to and
// the way to reach the API server. Each group embeds them in its own
// Options.
type Options struct {
	genericiooptions.IOStreams

	// ConfigFlags are kubectl's flags (--kubeconfig, --context, --namespace,
	// ...). The namespace always comes from them.
	ConfigFlags Flags

	// Client, when set, is used instead of a client built from ConfigFlags.
	// Tests point it at their API server.
	Client client.Client
}

// NewOptions returns Options writing to streams, with kubectl's flags.
func NewOptions(streams genericiooptions.IOStreams) Options {
	return Options{IOStreams: streams, ConfigFlags: New()}
}

// ClientAndNamespace returns the client to use (Client, when set) and the
// namespace the flags select, with errors that say what to pass.
func (o *Options) ClientAndNamespace() (client.Client, string, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("finding the namespace in the kubeconfig: %w (pass --namespace, or --kubeconfig/--context)", err)
	}
	if o.Client != nil {
		return o.Client, ns, nil
	}
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading the kubeconfig: %w (pass --kubeconfig or set KUBECONFIG)", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, "", fmt.Errorf("connecting to the API server at %s: %w", cfg.Host, err)
	}
	return c, ns, nil
}

// Kind is a kind as a verb group names it in messages.
type Kind struct {
	// Name is the kind, e.g. CafeAppService.
	Name string
	// Plural names objects of the kind, e.g. CafeAppServices.
	Plural string
	// ListCommand lists the objects of a namespace, e.g. "cafe app list";
	// hints add "-n <namespace>".
	ListCommand string
	// NewList returns an empty list of the kind, for completions.
	NewList func() client.ObjectList
}

// Get reads the object of the kind named name in namespace into obj, with
// an error that names it and says how to list what exists.
func (k Kind) Get(ctx context.Context, c client.Client, obj client.Object, namespace, name string) error {
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s/%s not found: check the name and --namespace (list them with: %s -n %s)", k.Name, namespace, name, k.ListCommand, namespace)
	case err != nil:
		return fmt.Errorf("reading %s %s/%s: %w", k.Name, namespace, name, err)
	}
	return nil
}

// Get reads the object of kind named name, in the namespace of the flags,
// into obj. It returns the client, for the verb's further calls.
func (o *Options) Get(ctx context.Context, kind Kind, obj client.Object, name string) (client.Client, error) {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return nil, err
	}
	return c, kind.Get(ctx, c, obj, ns, name)
}

// GetObject reads the object of kind named name, in the namespace of the
// flags, into a new *T, and returns the client, for the verb's further
// calls, and the object. On an error it returns neither.
func GetObject[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, o *Options, kind Kind, name string) (client.Client, PT, error) {
	obj := PT(new(T))
	c, err := o.Get(ctx, kind, obj, name)
	if err != nil {
		return nil, nil, err
	}
	return c, obj, nil
}

// List lists the objects of kind in the namespace of the flags into list.
// It returns the namespace, for messages.
func (o *Options) List(ctx context.Context, kind Kind, list client.ObjectList) (string, error) {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return "", err
	}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return "", fmt.Errorf("listing %s in %s: %w", kind.Plural, ns, err)
	}
	return ns, nil
}

// completionTimeout bounds the API call a shell completion makes, so a
// slow or unreachable server never hangs the shell.
const completionTimeout = 5 * time.Second

// CompleteNames completes a verb's one argument with the names of the
// objects of kind in the namespace of the flags.
func (o *Options) CompleteNames(kind Kind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			// Cobra sets no context on the command a completion is for.
			ctx = context.Background()
		}
		names, err := o.namesWithPrefix(ctx, kind.NewList(), toComplete)
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func (o *Options) namesWithPrefix(ctx context.Context, list client.ObjectList, prefix string) ([]string, error) {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	return namesWithPrefix(list, prefix)
}

// namesWithPrefix returns the names of the items of list that start with
// prefix, in list order.
func namesWithPrefix(list client.ObjectList, prefix string) ([]string, error) {
	var out []string
	err := meta.EachListItem(list, func(item runtime.Object) error {
		obj, err := meta.Accessor(item)
		if err != nil {
			return err
		}
		if strings.HasPrefix(obj.GetName(), prefix) {
			out = append(out, obj.GetName())
		}
		return nil
	})
	return out, err
}
