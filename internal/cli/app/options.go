package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/cafe-io/cafe/internal/cli/kubeflags"
	"github.com/cafe-io/cafe/internal/cli/table"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Options carry what every `cafe app` verb needs.
type Options struct {
	kubeflags.Options
}

// NewOptions returns Options writing to streams, with kubectl's flags.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{Options: kubeflags.NewOptions(streams)}
}

// appKind is how messages name CafeAppServices.
var appKind = kubeflags.Kind{
	Name: "CafeAppService", Plural: "CafeAppServices", ListCommand: "cafe app list",
	NewList: func() client.ObjectList { return &cafev1alpha1.CafeAppServiceList{} },
}

// getApp reads the app named name in the namespace of the flags. It
// returns the client, for the verb's further calls.
func (o *Options) getApp(ctx context.Context, name string) (client.Client, *cafev1alpha1.CafeAppService, error) {
	return kubeflags.GetObject[cafev1alpha1.CafeAppService](ctx, &o.Options, appKind, name)
}

// getAppAndRevisions reads the app named name and its revisions, oldest
// first, and returns the client for the verb's further calls.
func (o *Options) getAppAndRevisions(ctx context.Context, name string) (client.Client, *cafev1alpha1.CafeAppService, []cafev1alpha1.AppRevision, error) {
	c, app, err := o.getApp(ctx, name)
	if err != nil {
		return nil, nil, nil, err
	}
	revs, err := listRevisions(ctx, c, app)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, app, revs, nil
}

// listRevisions returns the app's revisions, oldest first.
func listRevisions(ctx context.Context, c client.Client, app *cafev1alpha1.CafeAppService) ([]cafev1alpha1.AppRevision, error) {
	list := &cafev1alpha1.AppRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(app.Namespace), client.MatchingLabels{cafev1alpha1.AppLabel: app.Name}); err != nil {
		return nil, fmt.Errorf("listing the revisions of %s: %w", ref(app), err)
	}
	var out []cafev1alpha1.AppRevision
	for _, r := range list.Items {
		if metav1.IsControlledBy(&r, app) {
			out = append(out, r)
		}
	}
	sortRevisions(out)
	return out, nil
}

// getRevision reads one revision of app by any of its names (pay-r2, r2, 2).
func getRevision(ctx context.Context, c client.Client, app *cafev1alpha1.CafeAppService, refName string) (*cafev1alpha1.AppRevision, error) {
	name, err := cafev1alpha1.ResolveAppRevisionName(app.Name, refName)
	if err != nil {
		return nil, err
	}
	rev := &cafev1alpha1.AppRevision{}
	err = c.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: name}, rev)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%s has no revision %s (list them with: cafe app revisions %s -n %s)", ref(app), name, app.Name, app.Namespace)
	case err != nil:
		return nil, fmt.Errorf("reading AppRevision %s: %w", name, err)
	}
	if !metav1.IsControlledBy(rev, app) {
		return nil, fmt.Errorf("AppRevision %s/%s does not belong to %s", rev.Namespace, rev.Name, ref(app))
	}
	return rev, nil
}

func ref(app *cafev1alpha1.CafeAppService) string {
	return "CafeAppService " + app.Namespace + "/" + app.Name
}

func images(rev *cafev1alpha1.AppRevision) string {
	parts := make([]string, 0, len(rev.Spec.Template.Spec.Containers))
	for _, c := range rev.Spec.Template.Spec.Containers {
		parts = append(parts, c.Name+"="+c.Image)
	}
	return table.OrDash(strings.Join(parts, ","))
}
