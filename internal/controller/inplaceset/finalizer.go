package inplaceset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podutil"
	"github.com/cafe-io/cafe/internal/writebatch"
)

// drainFinalizer holds a deleted InPlaceSet until its controller has
// drained and deleted every pod of it. Without it the garbage collector
// would delete the pods of a deleted set (or of a deleted CafeDeployment)
// while they still serve. An admin removes it by hand only when CAFE is
// gone for good (docs/cafedeployment.md).
const drainFinalizer = cafev1alpha1.InPlaceSetDrainFinalizer

// ensureFinalizer adds drainFinalizer to a live set and reports whether it
// wrote (the update wakes the controller again).
func (r *Reconciler) ensureFinalizer(ctx context.Context, set *cafev1alpha1.InPlaceSet) (bool, error) {
	if controllerutil.ContainsFinalizer(set, drainFinalizer) {
		return false, nil
	}
	patched := set.DeepCopy()
	controllerutil.AddFinalizer(patched, drainFinalizer)
	if err := r.Client.Patch(ctx, patched, client.MergeFromWithOptions(set, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, fmt.Errorf("adding finalizer %s: %w", drainFinalizer, err)
	}
	return true, nil
}

// finalize runs while the set is being deleted: its pods leave through the
// lossless protocol, at most maxUnavailable (at least one) serving pods
// draining at a time, and the finalizer goes once every pod's deletion has
// begun.
func (r *Reconciler) finalize(ctx context.Context, set *cafev1alpha1.InPlaceSet) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(set, drainFinalizer) {
		return ctrl.Result{}, nil
	}
	set.Default()
	pods, err := r.setPods.of(set)
	if err != nil {
		return ctrl.Result{}, err
	}
	leaving := make([]leavingPod, 0, len(pods))
	for _, pod := range pods {
		p, err := r.leavingPod(ctx, pod)
		if err != nil {
			return ctrl.Result{}, err
		}
		leaving = append(leaving, p)
	}
	maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(set.Spec.UpdateStrategy.MaxUnavailable, int(ptr.Deref(set.Spec.Replicas, 1)), false)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("spec.updateStrategy.maxUnavailable: %w", err)
	}
	if err := r.publishLeaving(ctx, set, pods); err != nil {
		return ctrl.Result{}, err
	}
	closeGates, deletes, done := planLeaving(leaving, maxUnavailable)
	if done {
		r.sliceWrites.forget(set.UID)
		patched := set.DeepCopy()
		controllerutil.RemoveFinalizer(patched, drainFinalizer)
		if err := r.Client.Patch(ctx, patched, client.MergeFromWithOptions(set, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("removing finalizer %s: %w", drainFinalizer, err))
		}
		return ctrl.Result{}, nil
	}
	var w writebatch.Batch
	for _, pod := range closeGates {
		w.Add(func() error {
			return ignoreGone(lossless.SetGate(ctx, r.Client, pod, corev1.ConditionFalse, lossless.ReasonDrainForDelete, "draining traffic before deletion: the InPlaceSet is being deleted"))
		})
	}
	for _, pod := range deletes {
		w.Add(func() error {
			err := lossless.DeleteDrained(ctx, r.Client, pod)
			if err == nil {
				ctrl.LoggerFrom(ctx).V(1).Info("Deleted drained pod of a deleted InPlaceSet", "pod", klog.KObj(pod))
			}
			return ignoreGone(err)
		})
	}
	return ctrl.Result{}, w.Run(writebatch.Concurrency)
}

// leavingPod is what planLeaving knows of a pod of a deleted set.
type leavingPod struct {
	Pod         *corev1.Pod
	Terminating bool
	// Serving: Ready with its gate open; draining it takes capacity away.
	Serving     bool
	DrainReason string
	Drained     bool
}

func (r *Reconciler) leavingPod(ctx context.Context, pod *corev1.Pod) (leavingPod, error) {
	p := leavingPod{
		Pod: pod, Terminating: !pod.DeletionTimestamp.IsZero(),
		Serving: podutil.Ready(pod) && lossless.GateOpen(pod), DrainReason: lossless.DrainReason(pod),
	}
	if p.DrainReason != "" {
		slices, err := r.Slices.ForPod(ctx, pod)
		if err != nil {
			return p, err
		}
		p.Drained = lossless.Drained(pod, slices)
	}
	return p, nil
}

// planLeaving decides the next steps of emptying a deleted set: drained
// pods are deleted; pods that serve nobody are drained at once; serving
// pods are drained while fewer than maxUnavailable (at least one) pods are
// draining, so capacity goes down step by step as in a scale-in that
// respects the water level. done is true once every pod's deletion began.
func planLeaving(pods []leavingPod, maxUnavailable int) (closeGates, deletes []*corev1.Pod, done bool) {
	budget := max(maxUnavailable, 1)
	done = true
	for _, p := range pods {
		if !p.Terminating {
			done = false
			if p.DrainReason != "" && !p.Drained {
				budget--
			}
		}
	}
	for _, p := range pods {
		switch {
		case p.Terminating:
		case p.DrainReason != "":
			if p.Drained {
				deletes = append(deletes, p.Pod)
			}
		case !p.Serving:
			closeGates = append(closeGates, p.Pod)
		case budget > 0:
			budget--
			closeGates = append(closeGates, p.Pod)
		}
	}
	return closeGates, deletes, done
}
