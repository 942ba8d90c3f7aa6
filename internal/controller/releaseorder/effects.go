package releaseorder

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// applyEffects makes the apps match the order's status. Every effect is
// derived from the status alone and is idempotent, so running it again
// after a crash, or twice, changes nothing more:
//
//	app Publishing          publish toRevision, only while the app still
//	                        publishes fromRevision (locked on its
//	                        resourceVersion), with the strategy overrides
//	app RollingBack         publish fromRevision (fast), original strategy
//	app Releasing + confirm set the CafeDeployment's confirm-group
//	app held                pause the CafeDeployment while the order is
//	                        Paused, resume it otherwise
//	app done + overridden   restore the app's own strategy
//	order open / finished   hold / release the revisions it refers to
func (r *Reconciler) applyEffects(ctx context.Context, o *cafev1alpha1.ReleaseOrder) error {
	var errs []error
	paused := o.Status.Phase == cafev1alpha1.OrderPaused
	for i := range o.Status.Apps {
		st := &o.Status.Apps[i]
		spec := o.Spec.App(st.Name)
		if spec == nil {
			continue
		}
		if st.Held && (st.Phase == cafev1alpha1.AppPublishing || st.Phase == cafev1alpha1.AppReleasing) {
			// Before publishing, so that a held app starts no pod
			// operation.
			errs = append(errs, r.setCDPause(ctx, o.Namespace, st.Name, paused || st.Phase == cafev1alpha1.AppPublishing))
		}
		switch st.Phase {
		case cafev1alpha1.AppPublishing:
			if o.IsFinished() {
				break
			}
			errs = append(errs, r.publish(ctx, o.Namespace, st.Name, st.ToRevision, false, spec.Strategy,
				func(cur string) bool { return cur == st.FromRevision }))
		case cafev1alpha1.AppRollingBack:
			var restore *cafev1alpha1.ReleaseOrderAppStrategy
			if orig, ok := originalStrategy(st); ok && st.StrategyOverridden {
				restore = &orig
			}
			errs = append(errs, r.publish(ctx, o.Namespace, st.Name, st.FromRevision, true, restore,
				func(cur string) bool { return cur != st.FromRevision }))
		case cafev1alpha1.AppReleasing:
			if st.ConfirmGroup != nil && !o.IsFinished() {
				errs = append(errs, r.confirm(ctx, o.Namespace, st.Name, *st.ConfirmGroup))
			}
		case cafev1alpha1.AppSucceeded, cafev1alpha1.AppFailed, cafev1alpha1.AppRolledBack:
			if orig, ok := originalStrategy(st); ok && st.StrategyOverridden {
				errs = append(errs, r.restoreStrategy(ctx, o.Namespace, st.Name, orig))
			}
		}
		if st.Held && !paused && st.Phase != cafev1alpha1.AppPublishing && st.Phase != cafev1alpha1.AppReleasing {
			errs = append(errs, r.setCDPause(ctx, o.Namespace, st.Name, false))
		}
	}
	errs = append(errs, r.holdRevisions(ctx, o))
	return errors.Join(errs...)
}

// publish sets the app's spec.publishedRevision to rev when expect accepts
// the revision it publishes now, in one write locked on the
// resourceVersion it read, with the strategy fields of strategy (when not
// nil) and the fast-release annotation when fast.
func (r *Reconciler) publish(ctx context.Context, ns, name, rev string, fast bool, strategy *cafev1alpha1.ReleaseOrderAppStrategy, expect func(string) bool) error {
	for attempt := 0; ; attempt++ {
		app := &cafev1alpha1.CafeAppService{}
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
			return client.IgnoreNotFound(err)
		}
		if app.Spec.PublishedRevision == rev || !expect(app.Spec.PublishedRevision) {
			// Done already, or changed by someone else: decide sees it.
			return nil
		}
		patch := client.MergeFromWithOptions(app.DeepCopy(), client.MergeFromWithOptimisticLock{})
		app.Spec.PublishedRevision = rev
		if strategy != nil {
			overrideStrategy(&app.Spec.Workload.Strategy, *strategy)
		}
		if fast {
			metav1.SetMetaDataAnnotation(&app.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, rev)
		} else {
			delete(app.Annotations, cafev1alpha1.FastReleaseAnnotation)
		}
		err := r.Client.Patch(ctx, app, patch)
		if err == nil || !apierrors.IsConflict(err) || attempt >= 5 {
			if err != nil {
				return fmt.Errorf("publishing %s on CafeAppService %s/%s: %w", rev, ns, name, err)
			}
			return nil
		}
	}
}

// overrideStrategy copies the order's overrides into an app's strategy.
func overrideStrategy(s *cafev1alpha1.CafeDeploymentStrategy, o cafev1alpha1.ReleaseOrderAppStrategy) {
	if o.BatchSize != nil {
		s.BatchSize = o.BatchSize
	}
	if o.Groups != nil {
		s.Groups = o.Groups
	}
	if o.NeedWaitingForConfirm != nil {
		s.NeedWaitingForConfirm = o.NeedWaitingForConfirm
	}
}

// restoreStrategy gives the app its own strategy back once its part of the
// order is over.
func (r *Reconciler) restoreStrategy(ctx context.Context, ns, name string, orig cafev1alpha1.ReleaseOrderAppStrategy) error {
	app := &cafev1alpha1.CafeAppService{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
		return client.IgnoreNotFound(err)
	}
	s := &app.Spec.Workload.Strategy
	if equality.Semantic.DeepEqual(s.BatchSize, orig.BatchSize) && equality.Semantic.DeepEqual(s.Groups, orig.Groups) && equality.Semantic.DeepEqual(s.NeedWaitingForConfirm, orig.NeedWaitingForConfirm) {
		return nil
	}
	patch := client.MergeFromWithOptions(app.DeepCopy(), client.MergeFromWithOptimisticLock{})
	s.BatchSize, s.Groups, s.NeedWaitingForConfirm = orig.BatchSize, orig.Groups, orig.NeedWaitingForConfirm
	if err := r.Client.Patch(ctx, app, patch); err != nil {
		return fmt.Errorf("restoring the strategy of CafeAppService %s/%s: %w", ns, name, err)
	}
	return nil
}

// setCDPause sets spec.strategy.pause of the app's CafeDeployment.
func (r *Reconciler) setCDPause(ctx context.Context, ns, name string, pause bool) error {
	cd := &cafev1alpha1.CafeDeployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cd); err != nil {
		return client.IgnoreNotFound(err)
	}
	if cd.Spec.Strategy.Pause == pause {
		return nil
	}
	patch := client.MergeFrom(cd.DeepCopy())
	cd.Spec.Strategy.Pause = pause
	if err := r.Client.Patch(ctx, cd, patch); err != nil {
		return fmt.Errorf("setting spec.strategy.pause=%t on CafeDeployment %s/%s: %w", pause, ns, name, err)
	}
	return nil
}

// confirm confirms group of the app's CafeDeployment while the release
// waits on it.
func (r *Reconciler) confirm(ctx context.Context, ns, name string, group int32) error {
	cd := &cafev1alpha1.CafeDeployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cd); err != nil {
		return client.IgnoreNotFound(err)
	}
	rel := cd.Status.Release
	want := strconv.Itoa(int(group))
	if rel.Phase != cafev1alpha1.ReleasePhaseWaitingForConfirm || rel.CurrentGroup == nil || *rel.CurrentGroup != group || cd.Annotations[cafev1alpha1.ConfirmGroupAnnotation] == want {
		return nil
	}
	patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
	metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.ConfirmGroupAnnotation, want)
	if err := r.Client.Patch(ctx, cd, patch); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("confirming group %d of CafeDeployment %s/%s: %w", group, ns, name, err)
	}
	return nil
}

// holdRevisions keeps the revisions an open order refers to (to and from)
// from garbage collection, and lets them go once it is finished.
func (r *Reconciler) holdRevisions(ctx context.Context, o *cafev1alpha1.ReleaseOrder) error {
	key := o.HoldAnnotation()
	var errs []error
	for _, st := range o.Status.Apps {
		for _, name := range []string{st.ToRevision, st.FromRevision} {
			if name == "" {
				continue
			}
			rev := &cafev1alpha1.AppRevision{}
			if err := r.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: name}, rev); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				continue
			}
			_, held := rev.Annotations[key]
			if held == !o.IsFinished() {
				continue
			}
			patch := client.MergeFrom(rev.DeepCopy())
			if o.IsFinished() {
				delete(rev.Annotations, key)
			} else {
				metav1.SetMetaDataAnnotation(&rev.ObjectMeta, key, "open")
			}
			if err := r.Client.Patch(ctx, rev, patch); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("holding AppRevision %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
