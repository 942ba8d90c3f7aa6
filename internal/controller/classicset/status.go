package classicset

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// report writes the set's status from what the reconcile saw and planned.
// observedGeneration advances only when the plan was written.
func report(set *cafev1alpha1.ClassicSet, rev string, in planInput, p planResult, placed placement, executed bool) {
	st := &set.Status
	var replicas, ready, available, updated, updatedAvailable int32
	for _, s := range in.Instances {
		if s.Terminating {
			continue
		}
		replicas++
		if s.Ready {
			ready++
		}
		if in.available(s) {
			available++
		}
		if s.Updated {
			updated++
			if in.available(s) {
				updatedAvailable++
			}
		}
	}
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = replicas, ready, available
	st.UpdatedReplicas, st.UpdatedAvailableReplicas = updated, updatedAvailable
	st.UpdateRevision = rev
	if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil {
		st.Selector = sel.String()
	}
	if executed {
		st.ObservedGeneration = set.Generation
	}
	if placed.Missing != "" {
		setCondition(set, cafev1alpha1.ClassicSetPlacedCondition, metav1.ConditionFalse, cafev1alpha1.ClassicSetNoHostAvailableReason, placed.Missing)
	} else if p.Create == 0 || len(placed.Hosts) == p.Create {
		setCondition(set, cafev1alpha1.ClassicSetPlacedCondition, metav1.ConditionTrue, cafev1alpha1.ClassicSetPlacedReason, "every instance has a host")
	}
	desired := ptr.Deref(set.Spec.Replicas, 1)
	target := desired - min(max(ptr.Deref(set.Spec.UpdateStrategy.Partition, 0), 0), desired)
	switch {
	case updated >= target && updatedAvailable >= target:
		setCondition(set, cafev1alpha1.ClassicSetInstancesUpToDateCondition, metav1.ConditionTrue, cafev1alpha1.InPlaceSetPodsUpToDateReason,
			fmt.Sprintf("%d instances run revision %s", updated, rev))
	case p.Held != "":
		setCondition(set, cafev1alpha1.ClassicSetInstancesUpToDateCondition, metav1.ConditionFalse, cafev1alpha1.InPlaceSetWaitingForTrafficReason, "waiting for traffic to leave "+p.Held)
	case set.Spec.UpdateStrategy.Paused:
		setCondition(set, cafev1alpha1.ClassicSetInstancesUpToDateCondition, metav1.ConditionFalse, cafev1alpha1.InPlaceSetPodsUpdatePausedReason, "updates paused")
	default:
		msg := fmt.Sprintf("%d of %d instances available on revision %s", updatedAvailable, target, rev)
		if p.Blocked != "" {
			msg += "; " + p.Blocked
		}
		setCondition(set, cafev1alpha1.ClassicSetInstancesUpToDateCondition, metav1.ConditionFalse, cafev1alpha1.InPlaceSetPodsUpdatingReason, msg)
	}
}

func setCondition(set *cafev1alpha1.ClassicSet, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&set.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: set.Generation,
	})
}
