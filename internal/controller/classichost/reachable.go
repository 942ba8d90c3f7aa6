package classichost

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// judgeReachable decides a host's Reachable condition from the probe of
// its agent's endpoint just made (probeErr nil: it answered), the
// condition the host carries and now. A failing probe makes the host
// Unknown (ProbeFailing) at once and False (HostUnreachable) once it has
// failed for unreachableAfter since the first failure, which the Unknown
// condition's transition time records: the judgement survives a restart of
// CAFE. Pure.
func judgeReachable(host *cafev1alpha1.ClassicHost, probeErr error, now time.Time, unreachableAfter time.Duration) metav1.Condition {
	cond := metav1.Condition{Type: cafev1alpha1.ClassicHostReachableCondition, ObservedGeneration: host.Generation}
	endpoint := host.Status.AgentEndpoint
	switch {
	case endpoint == nil:
		cond.Status, cond.Reason = metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNoEndpoint
		cond.Message = "the agent has not published its health endpoint"
		return cond
	case probeErr == nil:
		cond.Status, cond.Reason = metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonAnswering
		cond.Message = fmt.Sprintf("the agent answers at %s:%d", host.Spec.Address, endpoint.Port)
		return cond
	}
	since := now
	if prev := meta.FindStatusCondition(host.Status.Conditions, cafev1alpha1.ClassicHostReachableCondition); prev != nil && prev.Status != metav1.ConditionTrue &&
		(prev.Reason == cafev1alpha1.ClassicHostReasonProbeFailing || prev.Reason == cafev1alpha1.ClassicHostReasonUnreachable) {
		since = prev.LastTransitionTime.Time
		if prev.Status == metav1.ConditionFalse {
			since = now.Add(-unreachableAfter) // already judged unreachable
		}
	}
	if now.Sub(since) >= unreachableAfter {
		cond.Status, cond.Reason = metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable
		cond.Message = fmt.Sprintf("the agent has not answered at %s:%d for %s or more: %v", host.Spec.Address, endpoint.Port, unreachableAfter, probeErr)
		return cond
	}
	cond.Status, cond.Reason = metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonProbeFailing
	cond.Message = fmt.Sprintf("the agent does not answer at %s:%d: %v", host.Spec.Address, endpoint.Port, probeErr)
	return cond
}
