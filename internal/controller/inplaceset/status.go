package inplaceset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/statuspatch"
)

// updateStatus computes the set's status from the gathered pods and writes
// it with one patch, only when it changed. observedGeneration advances only
// when the plan was executed without error.
func (r *Reconciler) updateStatus(ctx context.Context, set *cafev1alpha1.InPlaceSet, s *scope, p planResult, execErr error) error {
	before := set.DeepCopy()
	st := &set.Status
	var replicas, ready, available, updated, updatedReady int32
	for _, ps := range s.input.Pods {
		if ps.Terminating {
			continue
		}
		replicas++
		if ps.Ready {
			ready++
		}
		if s.input.available(ps) {
			available++
		}
		if ps.Updated {
			updated++
			// Serving, not only Ready: with spec.endpoints an updated pod
			// is Ready before the set's slices list it again, and the
			// CafeDeployment ends a group on this count.
			if s.input.serves(ps) {
				updatedReady++
			}
		}
	}
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = ptr.To(replicas), ptr.To(ready), ptr.To(available)
	st.UpdatedReplicas, st.UpdatedReadyReplicas = ptr.To(updated), ptr.To(updatedReady)
	st.UpdateRevision, st.CurrentRevision = s.updateHash, s.currentHash
	if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil {
		st.Selector = sel.String()
	}
	desired := int32(s.input.Replicas)
	setAvailableCondition(set, available, desired, int32(s.input.MaxUnavailable))
	setUpToDateCondition(set, updated, desired, int32(s.input.Partition), p)
	setScalingCondition(set, replicas, desired)
	setEndpointsCondition(set, s.endpoints)
	if execErr == nil {
		st.ObservedGeneration = set.Generation
	}
	wrote, err := statuspatch.IfChanged(ctx, r.Client, before, set, func(set *cafev1alpha1.InPlaceSet) any { return set.Status })
	if wrote {
		r.statusWrites.Wrote(client.ObjectKeyFromObject(set), set.ResourceVersion)
		r.reportUpdateDone(before, set)
	}
	return err
}

// reportUpdateDone records one event per set when its pods reach the update
// revision (per-pod events would be the largest share of a release's API
// writes). It is called once the status saying so is written, so the event
// is recorded once per transition.
func (r *Reconciler) reportUpdateDone(before, after *cafev1alpha1.InPlaceSet) {
	was := meta.IsStatusConditionTrue(before.Status.Conditions, cafev1alpha1.InPlaceSetPodsUpToDateCondition)
	now := meta.FindStatusCondition(after.Status.Conditions, cafev1alpha1.InPlaceSetPodsUpToDateCondition)
	if !was && now != nil && now.Status == metav1.ConditionTrue && before.Status.UpdateRevision != "" {
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, "PodsUpToDate", "Update", "%s", now.Message)
	}
}

func setAvailableCondition(set *cafev1alpha1.InPlaceSet, available, desired, maxUnavailable int32) {
	c := metav1.Condition{Type: cafev1alpha1.InPlaceSetAvailableCondition, ObservedGeneration: set.Generation}
	if available >= desired-maxUnavailable {
		c.Status, c.Reason = metav1.ConditionTrue, cafev1alpha1.InPlaceSetAvailableReason
		c.Message = fmt.Sprintf("%d of %d pods available", available, desired)
	} else {
		c.Status, c.Reason = metav1.ConditionFalse, cafev1alpha1.InPlaceSetNotAvailableReason
		c.Message = fmt.Sprintf("%d of %d pods available, fewer than replicas - maxUnavailable (%d)", available, desired, desired-maxUnavailable)
	}
	meta.SetStatusCondition(&set.Status.Conditions, c)
}

func setUpToDateCondition(set *cafev1alpha1.InPlaceSet, updated, desired, partition int32, p planResult) {
	c := metav1.Condition{Type: cafev1alpha1.InPlaceSetPodsUpToDateCondition, ObservedGeneration: set.Generation}
	target := desired - min(max(partition, 0), desired)
	switch {
	case updated >= target:
		c.Status, c.Reason = metav1.ConditionTrue, cafev1alpha1.InPlaceSetPodsUpToDateReason
		c.Message = fmt.Sprintf("%d pods run the update revision (partition %d)", updated, partition)
	case set.Spec.UpdateStrategy.Paused:
		c.Status, c.Reason = metav1.ConditionFalse, cafev1alpha1.InPlaceSetPodsUpdatePausedReason
		c.Message = fmt.Sprintf("paused with %d of %d pods updated", updated, target)
	case p.HeldDrain != "":
		c.Status, c.Reason = metav1.ConditionFalse, cafev1alpha1.InPlaceSetWaitingForTrafficReason
		c.Message = fmt.Sprintf("%d of %d pods updated; %s", updated, target, p.HeldDrain)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, cafev1alpha1.InPlaceSetPodsUpdatingReason
		c.Message = fmt.Sprintf("%d of %d pods updated", updated, target)
		if p.Blocked != "" {
			c.Message += "; " + p.Blocked
		}
	}
	meta.SetStatusCondition(&set.Status.Conditions, c)
}

// setEndpointsCondition reports spec.endpoints; without it, the condition
// goes once the set's slices are gone.
func setEndpointsCondition(set *cafev1alpha1.InPlaceSet, e *endpoints) {
	switch {
	case e.condition != nil:
		meta.SetStatusCondition(&set.Status.Conditions, *e.condition)
	case len(e.slices) == 0:
		meta.RemoveStatusCondition(&set.Status.Conditions, cafev1alpha1.InPlaceSetEndpointsPublishedCondition)
	}
}

func setScalingCondition(set *cafev1alpha1.InPlaceSet, replicas, desired int32) {
	c := metav1.Condition{Type: cafev1alpha1.InPlaceSetScalingCondition, ObservedGeneration: set.Generation, Status: metav1.ConditionTrue}
	switch {
	case replicas < desired:
		c.Reason, c.Message = cafev1alpha1.InPlaceSetScalingUpReason, fmt.Sprintf("%d of %d pods exist", replicas, desired)
	case replicas > desired:
		c.Reason, c.Message = cafev1alpha1.InPlaceSetScalingDownReason, fmt.Sprintf("%d pods exist, %d wanted", replicas, desired)
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, cafev1alpha1.InPlaceSetNotScalingReason, fmt.Sprintf("%d pods", replicas)
	}
	meta.SetStatusCondition(&set.Status.Conditions, c)
}
