package deploy

import (
	"context"
	"fmt"

	"github.com/cafe-io/cafe/internal/cli/kubeflags"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Options carry what every `cafe deploy` verb needs.
type Options struct {
	kubeflags.Options
}

// NewOptions returns Options writing to streams, with kubectl's flags.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{Options: kubeflags.NewOptions(streams)}
}

// cafeDeploymentKind is how messages name CafeDeployments.
var cafeDeploymentKind = kubeflags.Kind{
	Name: "CafeDeployment", Plural: "CafeDeployments", ListCommand: "kubectl get cafedeployments",
	NewList: func() client.ObjectList { return &cafev1alpha1.CafeDeploymentList{} },
}

// getCafeDeployment reads the CafeDeployment named name in the namespace
// of the flags. It returns the client, for the verb's further calls.
func (o *Options) getCafeDeployment(ctx context.Context, name string) (client.Client, *cafev1alpha1.CafeDeployment, error) {
	return kubeflags.GetObject[cafev1alpha1.CafeDeployment](ctx, &o.Options, cafeDeploymentKind, name)
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
