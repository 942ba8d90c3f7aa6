package cafedeployment

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment/podset"
	"github.com/cafe-io/cafe/internal/release/plan"
)

// setStatus aggregates the pod sets into the CafeDeployment's status and
// sets its conditions. observedGeneration advances only when every pod set
// was applied.
func setStatus(cd *cafev1alpha1.CafeDeployment, p plan.Plan, reports map[string]podset.UnitReport, applyErr error) {
	st := &cd.Status
	var replicas, ready, available, updated int32
	st.Units = st.Units[:0]
	for _, u := range p.Units {
		us := cafev1alpha1.UnitStatus{Name: u, DesiredReplicas: ptr.To(p.UnitReplicas[u])}
		if v, ok := reports[u]; ok {
			us.Replicas, us.ReadyReplicas, us.AvailableReplicas = ptr.To(v.Replicas), ptr.To(v.Ready), ptr.To(v.Available)
			us.UpdatedReplicas = ptr.To(v.Updated)
		}
		replicas += ptr.Deref(us.Replicas, 0)
		ready += ptr.Deref(us.ReadyReplicas, 0)
		available += ptr.Deref(us.AvailableReplicas, 0)
		updated += ptr.Deref(us.UpdatedReplicas, 0)
		st.Units = append(st.Units, us)
	}
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.UpdatedReplicas = ptr.To(replicas), ptr.To(ready), ptr.To(available), ptr.To(updated)
	if sel, err := metav1.LabelSelectorAsSelector(cd.Spec.Selector); err == nil {
		st.Selector = sel.String()
	}

	desired := p.Total()
	minAvailable := desired
	if cd.Spec.Strategy.MinAvailable != nil {
		if v, err := cafev1alpha1.ResolveIntOrPercent(*cd.Spec.Strategy.MinAvailable, desired, true); err == nil {
			minAvailable = v
		}
	}
	if available >= minAvailable {
		setCondition(cd, cafev1alpha1.CafeDeploymentAvailableCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentAvailableReason, fmt.Sprintf("%d of %d pods available", available, desired))
	} else {
		setCondition(cd, cafev1alpha1.CafeDeploymentAvailableCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentNotAvailableReason, fmt.Sprintf("%d of %d pods available, below the water level %d", available, desired, minAvailable))
	}

	rel := st.Release
	group := fmt.Sprintf("group %d of %d", ptr.Deref(rel.CurrentGroup, 0), ptr.Deref(rel.TotalGroups, 0))
	switch {
	case applyErr != nil:
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentReleaseFailedReason, applyErr.Error())
	case rel.Phase == cafev1alpha1.ReleasePhaseFailed:
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentReleaseFailedReason,
			"release of "+st.UpdateRevision+" failed at "+group+": its traffic analysis judged the updated pods bad (see the TrafficStep condition); roll back with: cafe deploy rollback "+cd.Name)
	case rel.Phase == cafev1alpha1.ReleasePhaseCompleted:
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentNotProgressingReason, "release of "+st.UpdateRevision+" completed")
	case heldDrain(p.Units, reports) != "":
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentWaitingForTrafficReason,
			"releasing "+st.UpdateRevision+": "+group+"; waiting for traffic to leave a pod, "+heldDrain(p.Units, reports))
	default:
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentProgressingReason, "releasing "+st.UpdateRevision+": "+group)
	}
	if cd.Spec.Strategy.Pause {
		setCondition(cd, cafev1alpha1.CafeDeploymentReleasePausedCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentPausedReason, "spec.strategy.pause is set: no pod operation starts")
	} else {
		setCondition(cd, cafev1alpha1.CafeDeploymentReleasePausedCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentNotPausedReason, "")
	}
	if rel.Phase == cafev1alpha1.ReleasePhaseWaitingForConfirm {
		setCondition(cd, cafev1alpha1.CafeDeploymentWaitingForConfirmCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentWaitingForConfirmReason,
			fmt.Sprintf("%s finished; confirm with: cafe deploy confirm %s (or annotate %s=%d)", group, cd.Name, cafev1alpha1.ConfirmGroupAnnotation, ptr.Deref(rel.CurrentGroup, 0)))
	} else {
		setCondition(cd, cafev1alpha1.CafeDeploymentWaitingForConfirmCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentNotWaitingForConfirmReason, "")
	}
	if applyErr == nil {
		st.ObservedGeneration = cd.Generation
	}
}

// heldDrainRecheck is how soon a unit's drain would count as held (0: no
// such drain), for the status to say so on time.
func heldDrainRecheck(reports map[string]podset.UnitReport) time.Duration {
	var d time.Duration
	for _, r := range reports {
		d = soonest(d, r.HeldDrainIn)
	}
	return d
}

// soonest is the earlier of two wake-ups, 0 meaning none.
func soonest(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// heldDrain is the first unit (in plan order) whose pod set reports a drain
// held by traffic, as "unit <name>: <why>", or "".
func heldDrain(units []string, reports map[string]podset.UnitReport) string {
	for _, u := range units {
		if why := reports[u].HeldDrain; why != "" {
			return "unit " + u + ": " + why
		}
	}
	return ""
}
