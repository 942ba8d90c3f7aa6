package classicset

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

// drainFinalizer holds a deleted ClassicSet until its controller has
// drained and deleted every instance of it. Without it the garbage
// collector would delete the instances of a deleted set (or of a deleted
// CafeDeployment) while they still serve, and their agents would stop
// them mid-request. An admin removes it by hand only when CAFE is gone
// for good.
const drainFinalizer = cafev1alpha1.ClassicSetDrainFinalizer

// ensureFinalizer adds drainFinalizer to a live set and reports whether it
// wrote.
func (r *Reconciler) ensureFinalizer(ctx context.Context, set *cafev1alpha1.ClassicSet) (bool, error) {
	if controllerutil.ContainsFinalizer(set, drainFinalizer) {
		return false, nil
	}
	patched := set.DeepCopy()
	controllerutil.AddFinalizer(patched, drainFinalizer)
	if err := r.Client.Patch(ctx, patched, client.MergeFromWithOptions(set, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, ignoreStale(fmt.Errorf("adding finalizer %s: %w", drainFinalizer, err))
	}
	return true, nil
}

// finalize empties a deleted set the way a scale-in to zero does (plan
// with no replicas, paused or not): every instance is drained, then
// deleted once nothing routes to it; the finalizer goes once every
// instance's deletion has begun.
func (r *Reconciler) finalize(ctx context.Context, set *cafev1alpha1.ClassicSet) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(set, drainFinalizer) {
		return ctrl.Result{}, nil
	}
	instances, err := r.instancesOf(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	if allTerminating(instances) {
		patched := set.DeepCopy()
		controllerutil.RemoveFinalizer(patched, drainFinalizer)
		if err := r.Client.Patch(ctx, patched, client.MergeFromWithOptions(set, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(ignoreStale(fmt.Errorf("removing finalizer %s: %w", drainFinalizer, err)))
		}
		return ctrl.Result{}, nil
	}
	rev := revision.ObjectHash(set.Spec.Template)
	in, err := r.observe(ctx, set, rev, instances, nil)
	if err != nil {
		return ctrl.Result{}, err
	}
	in.Replicas, in.Paused = 0, false
	p := plan(in)
	// Drains end on an EndpointSlice or a finalizer changing, which wake
	// the set; the retry covers a provider that only polls.
	return ctrl.Result{RequeueAfter: time.Second}, r.execute(ctx, set, rev, p, placement{})
}

// allTerminating: every instance's deletion has begun (none left is one).
func allTerminating(instances []cafev1alpha1.ClassicInstance) bool {
	for i := range instances {
		if instances[i].DeletionTimestamp.IsZero() {
			return false
		}
	}
	return true
}
