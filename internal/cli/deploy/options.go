package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/cli/kubeflags"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Options carry what every `cafe deploy` verb needs: the streams it writes
// to and the way to reach the API server.
type Options struct {
	genericiooptions.IOStreams

	// ConfigFlags are kubectl's flags (--kubeconfig, --context, --namespace,
	// ...). The namespace always comes from them.
	ConfigFlags kubeflags.Flags

	// Client, when set, is used instead of a client built from ConfigFlags.
	// Tests point it at their API server.
	Client client.Client
}

// NewOptions returns Options writing to streams, with kubectl's flags.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{IOStreams: streams, ConfigFlags: kubeflags.New()}
}

// clientAndNamespace returns the client to use and the namespace the
// CafeDeployments are in.
func (o *Options) clientAndNamespace() (client.Client, string, error) {
	return kubeflags.ClientAndNamespace(o.ConfigFlags, o.Client)
}

// getCafeDeployment reads a CafeDeployment, with an error that names it and
// says what to check.
func getCafeDeployment(ctx context.Context, c client.Client, namespace, name string) (*cafev1alpha1.CafeDeployment, error) {
	cd := &cafev1alpha1.CafeDeployment{}
	if err := kubeflags.Get(ctx, c, cd, "CafeDeployment", namespace, name, "kubectl get cafedeployments -n "+namespace); err != nil {
		return nil, err
	}
	return cd, nil
}

// completionTimeout bounds the API call a shell completion makes, so a
// slow or unreachable server never hangs the shell.
const completionTimeout = 5 * time.Second

// completeNames completes the first argument with the names of the
// CafeDeployments in the namespace.
func (o *Options) completeNames(ctx context.Context, args []string, toComplete string) ([]string, error) {
	if len(args) > 0 {
		return nil, nil
	}
	c, ns, err := o.clientAndNamespace()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	list := &cafev1alpha1.CafeDeploymentList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	return namesWithPrefix(list.Items, toComplete), nil
}

// namesWithPrefix returns the names of cds that start with prefix.
func namesWithPrefix(cds []cafev1alpha1.CafeDeployment, prefix string) []string {
	var out []string
	for i := range cds {
		if strings.HasPrefix(cds[i].Name, prefix) {
			out = append(out, cds[i].Name)
		}
	}
	return out
}

// stampedBy returns the user CAFE's admission webhook recorded under byKey
// in after, and false when the write from before to after was not stamped
// (no webhook, or a write it does not stamp): the annotation is missing or
// both it and the time under atKey are unchanged, so what is there is from
// an earlier action.
func stampedBy(before, after *cafev1alpha1.CafeDeployment, byKey, atKey string) (string, bool) {
	by := after.Annotations[byKey]
	if by == "" {
		return "", false
	}
	if by == before.Annotations[byKey] && after.Annotations[atKey] == before.Annotations[atKey] {
		return "", false
	}
	return by, true
}

// command is the `cafe deploy` command line that runs verb on cd, for the
// hints in messages.
func command(verb string, cd *cafev1alpha1.CafeDeployment) string {
	return "cafe deploy " + verb + " " + cd.Name + " -n " + cd.Namespace
}

// ref names a CafeDeployment in messages.
func ref(cd *cafev1alpha1.CafeDeployment) string {
	return "CafeDeployment " + cd.Namespace + "/" + cd.Name
}

// withConflictHint says what to do when retries on conflict ran out.
func withConflictHint(err error) error {
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%w (the object kept changing while the command ran; run it again)", err)
	}
	return err
}
