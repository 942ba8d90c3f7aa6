package app

import (
	"context"
	"errors"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// ErrConcurrentPublish is returned when another publish of the same app
// won: the command read the app, someone else changed
// spec.publishedRevision before the command's write landed.
var ErrConcurrentPublish = errors.New("another publish won")

// publishRequest is one publication: which revision, and whether in one
// group.
type publishRequest struct {
	Revision string
	Fast     bool
	// Verb names the command in messages ("publish" or "rollback").
	Verb string
}

// publish sets spec.publishedRevision of the app as read (seen) to the
// request's revision, in one write locked on seen's resourceVersion. A
// conflict caused by anything but another publish (the controller's
// status writes) is retried from a fresh read; a conflict with another
// publish is returned as ErrConcurrentPublish, naming the winner.
func publish(ctx context.Context, c client.Client, seen *cafev1alpha1.CafeAppService, req publishRequest) (*cafev1alpha1.CafeAppService, error) {
	app := seen.DeepCopy()
	for attempt := 0; ; attempt++ {
		if app.Spec.PublishedRevision != seen.Spec.PublishedRevision || app.Annotations[cafev1alpha1.PublishedAtAnnotation] != seen.Annotations[cafev1alpha1.PublishedAtAnnotation] {
			return nil, fmt.Errorf("%w: %s was published by %s at %s while this %s was under way (it had read %s); nothing was changed — look at `cafe app get %s -n %s` and run the command again if you still want %s: %w",
				ErrConcurrentPublish, table.OrDash(app.Spec.PublishedRevision), table.OrDash(app.Annotations[cafev1alpha1.PublishedByAnnotation]), table.OrDash(app.Annotations[cafev1alpha1.PublishedAtAnnotation]),
				req.Verb, table.OrDash(seen.Spec.PublishedRevision), app.Name, app.Namespace, req.Revision, apierrors.NewConflict(cafev1alpha1.GroupVersion.WithResource("cafeappservices").GroupResource(), app.Name, errors.New("concurrent publish")))
		}
		patch := client.MergeFromWithOptions(app.DeepCopy(), client.MergeFromWithOptimisticLock{})
		app.Spec.PublishedRevision = req.Revision
		if req.Fast {
			if app.Annotations == nil {
				app.Annotations = map[string]string{}
			}
			app.Annotations[cafev1alpha1.FastReleaseAnnotation] = req.Revision
		} else {
			// A fast request left by an earlier rollback must not make this
			// publish fast.
			delete(app.Annotations, cafev1alpha1.FastReleaseAnnotation)
		}
		err := c.Patch(ctx, app, patch)
		if err == nil {
			return app, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return nil, fmt.Errorf("setting spec.publishedRevision of %s to %s: %w", ref(seen), req.Revision, err)
		}
		app = &cafev1alpha1.CafeAppService{}
		if err := appKind.Get(ctx, c, app, seen.Namespace, seen.Name); err != nil {
			return nil, err
		}
	}
}

// publishRevision is `cafe app publish APP --revision rN [--fast]`.
func (o *Options) publishRevision(ctx context.Context, name, revision string, fast bool) error {
	c, app, err := o.getApp(ctx, name)
	if err != nil {
		return err
	}
	rev, err := getRevision(ctx, c, app, revision)
	if err != nil {
		return err
	}
	if app.Spec.PublishedRevision == rev.Name {
		fmt.Fprintf(o.Out, "%s is already the published revision of %s; nothing to do\n", rev.Name, ref(app))
		return nil
	}
	return o.publishAndReport(ctx, c, app, publishRequest{Revision: rev.Name, Fast: fast, Verb: "publish"})
}

// rollbackTarget picks the revision a rollback publishes: to (any of a
// revision's names) when given, else the revision that most recently
// succeeded other than the published one. Only a revision that succeeded
// once can be rolled back to; others are published with `cafe app publish`.
func rollbackTarget(app *cafev1alpha1.CafeAppService, revs []cafev1alpha1.AppRevision, to string) (*cafev1alpha1.AppRevision, error) {
	published := app.Spec.PublishedRevision
	if to != "" {
		name, err := cafev1alpha1.ResolveAppRevisionName(app.Name, to)
		if err != nil {
			return nil, err
		}
		for i := range revs {
			if revs[i].Name != name {
				continue
			}
			switch {
			case name == published:
				return nil, fmt.Errorf("%s is already the published revision of %s: nothing to roll back to", name, ref(app))
			case revs[i].Status.LastSucceededAt == nil:
				return nil, fmt.Errorf("%s never released successfully (outcome %s), so it is no rollback target; publish it with: cafe app publish %s --revision %s -n %s",
					name, table.OrDash(string(revs[i].Status.Outcome)), app.Name, name, app.Namespace)
			}
			return &revs[i], nil
		}
		return nil, fmt.Errorf("%s has no revision %s (list them with: cafe app revisions %s -n %s)", ref(app), name, app.Name, app.Namespace)
	}
	var candidates []*cafev1alpha1.AppRevision
	for i := range revs {
		if revs[i].Name != published && revs[i].Status.LastSucceededAt != nil {
			candidates = append(candidates, &revs[i])
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%s has no revision to roll back to: none besides the published %s has ever released successfully (see: cafe app revisions %s -n %s)",
			ref(app), table.OrDash(published), app.Name, app.Namespace)
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		return candidates[i].Status.LastSucceededAt.Before(candidates[j].Status.LastSucceededAt)
	})
	return candidates[len(candidates)-1], nil
}

// rollback is `cafe app rollback APP [--to rN] [--fast]`.
func (o *Options) rollback(ctx context.Context, name, to string, fast bool) error {
	c, app, revs, err := o.getAppAndRevisions(ctx, name)
	if err != nil {
		return err
	}
	target, err := rollbackTarget(app, revs, to)
	if err != nil {
		return err
	}
	return o.publishAndReport(ctx, c, app, publishRequest{Revision: target.Name, Fast: fast, Verb: "rollback"})
}

// publishAndReport publishes req on app as read and says what came of it.
func (o *Options) publishAndReport(ctx context.Context, c client.Client, app *cafev1alpha1.CafeAppService, req publishRequest) error {
	done, err := publish(ctx, c, app, req)
	if err != nil {
		return err
	}
	o.reportPublished(done, app.Spec.PublishedRevision, req.Fast)
	return nil
}

func (o *Options) reportPublished(app *cafev1alpha1.CafeAppService, previous string, fast bool) {
	fmt.Fprintf(o.Out, "published %s of %s (was %s)", app.Spec.PublishedRevision, app.Name, table.OrDash(previous))
	if by := app.Annotations[cafev1alpha1.PublishedByAnnotation]; by != "" {
		fmt.Fprintf(o.Out, ", recorded as published by %s", by)
	}
	fmt.Fprintln(o.Out)
	if fast {
		fmt.Fprintln(o.Out, "fast: the CafeDeployment releases it in one group, without waiting for confirmation, within the water level")
	}
	fmt.Fprintf(o.Out, "follow the release with: cafe app get %s -n %s (or cafe deploy status %s -n %s)\n", app.Name, app.Namespace, app.Name, app.Namespace)
	if app.Spec.Workload.Strategy.Pause {
		fmt.Fprintf(o.ErrOut, "Warning: spec.workload.strategy.pause is set on %s: the release starts once it is cleared\n", ref(app))
	}
}
