package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// imageChange is one CONTAINER=IMAGE argument of `cafe app set image`.
type imageChange struct{ Container, Image string }

// parseImageChanges reads CONTAINER=IMAGE arguments, each container once.
func parseImageChanges(args []string) ([]imageChange, error) {
	var out []imageChange
	seen := map[string]bool{}
	for _, a := range args {
		name, image, ok := strings.Cut(a, "=")
		if !ok || name == "" || image == "" {
			return nil, fmt.Errorf("%q is not CONTAINER=IMAGE", a)
		}
		if seen[name] {
			return nil, fmt.Errorf("container %q is named twice", name)
		}
		seen[name] = true
		out = append(out, imageChange{Container: name, Image: image})
	}
	return out, nil
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// imagePatch is the JSON patch that sets the images of changes in app's
// template and nothing else, locked on the resourceVersion read, or an
// error naming a container the template does not have. It lists which
// images change (empty: every image is already as asked).
func imagePatch(app *cafev1alpha1.CafeAppService, changes []imageChange) ([]byte, []string, error) {
	ops := []jsonPatchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: app.ResourceVersion}}
	var changed []string
	spec := app.Spec.Template.Spec
	for _, ch := range changes {
		field, i := "containers", slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == ch.Container })
		current := ""
		if i >= 0 {
			current = spec.Containers[i].Image
		} else if i = slices.IndexFunc(spec.InitContainers, func(c corev1.Container) bool { return c.Name == ch.Container }); i >= 0 {
			field, current = "initContainers", spec.InitContainers[i].Image
		} else {
			return nil, nil, fmt.Errorf("%s has no container %q (containers: %s; init containers: %s)",
				ref(app), ch.Container, containerNames(spec.Containers), containerNames(spec.InitContainers))
		}
		if current == ch.Image {
			continue
		}
		changed = append(changed, fmt.Sprintf("%s %s → %s", ch.Container, current, ch.Image))
		ops = append(ops, jsonPatchOp{Op: "replace", Path: fmt.Sprintf("/spec/template/spec/%s/%d/image", field, i), Value: ch.Image})
	}
	data, err := json.Marshal(ops)
	return data, changed, err
}

func containerNames(cs []corev1.Container) string {
	if len(cs) == 0 {
		return "none"
	}
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// setImage is `cafe app set image APP CONTAINER=IMAGE...`: one JSON patch
// of the named images, so every other field of the template (ports,
// resources, probes) stays as it is and the release updates the pods in
// place. A merge patch of spec.template.spec.containers would replace the
// whole list (custom resources have no strategic merge). A conflict with
// another writer is retried from a fresh read.
func (o *Options) setImage(ctx context.Context, name string, args []string) error {
	changes, err := parseImageChanges(args)
	if err != nil {
		return err
	}
	c, app, err := o.getApp(ctx, name)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		patch, changed, err := imagePatch(app, changes)
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			fmt.Fprintf(o.Out, "%s already runs these images in its template; nothing to do\n", ref(app))
			return nil
		}
		err = c.Patch(ctx, app, client.RawPatch(types.JSONPatchType, patch))
		if err == nil {
			return o.reportImageSet(ctx, c, app, changed)
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return fmt.Errorf("setting images of %s: %w", ref(app), err)
		}
		if app, err = o.reread(ctx, c, app); err != nil {
			return err
		}
	}
}

func (o *Options) reread(ctx context.Context, c client.Client, app *cafev1alpha1.CafeAppService) (*cafev1alpha1.CafeAppService, error) {
	fresh := &cafev1alpha1.CafeAppService{}
	if err := appKind.Get(ctx, c, fresh, app.Namespace, app.Name); err != nil {
		return nil, err
	}
	return fresh, nil
}

// reportImageSet says what changed and which revision CAFE records for the
// new content: an existing one with the same content, or the next number.
func (o *Options) reportImageSet(ctx context.Context, c client.Client, app *cafev1alpha1.CafeAppService, changed []string) error {
	fmt.Fprintf(o.Out, "%s: %s\n", ref(app), strings.Join(changed, ", "))
	revs, err := listRevisions(ctx, c, app)
	if err != nil {
		return err
	}
	defaulted := app.DeepCopy()
	defaulted.Default()
	next := nextRevision(defaulted, revs)
	fmt.Fprintf(o.Out, "revision to be: %s (publish it with: cafe app publish %s --revision %s -n %s)\n", next, app.Name, next, app.Namespace)
	return nil
}

// nextRevision names the revision CAFE records for app's content: the
// revision that already holds it, or the next number.
func nextRevision(app *cafev1alpha1.CafeAppService, revs []cafev1alpha1.AppRevision) string {
	hash := app.ContentHash()
	top := app.Status.RevisionCount
	for _, r := range revs {
		if r.Spec.Hash == hash {
			return r.Name
		}
		top = max(top, r.Spec.Number)
	}
	return cafev1alpha1.AppRevisionName(app.Name, top+1)
}
