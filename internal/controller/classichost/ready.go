package classichost

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// readiness is the Ready condition a host should carry at now, and when it
// could next change by time alone (zero: only an event can change it).
type readiness struct {
	Condition metav1.Condition
	Recheck   time.Duration
}

// judgeReady decides a host's Ready condition from its heartbeat Lease
// (nil: none), its Reachable condition as just judged and the agent's own
// AgentReady condition. A heartbeat counts for staleAfter from its
// renewTime; a host CAFE cannot reach at its address (its network failed:
// its instances cannot be reached either), or whose agent heartbeats but
// says it cannot run instances, is not Ready. Pure: the reconciler writes
// the result.
func judgeReady(host *cafev1alpha1.ClassicHost, lease *coordinationv1.Lease, reachable metav1.Condition, now time.Time, staleAfter time.Duration) readiness {
	cond := metav1.Condition{Type: cafev1alpha1.ClassicHostReadyCondition, ObservedGeneration: host.Generation}
	switch {
	case lease == nil || lease.Spec.RenewTime == nil:
		cond.Status, cond.Reason = metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNeverHeartbeated
		cond.Message = fmt.Sprintf("no heartbeat Lease %s/%s renewed yet: the host's agent has not registered", cafev1alpha1.ClassicHostLeaseNamespace, host.Name)
		return readiness{Condition: cond}
	case !now.Before(lease.Spec.RenewTime.Add(staleAfter)):
		cond.Status, cond.Reason = metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale
		cond.Message = fmt.Sprintf("the agent's Lease was last renewed at %s, more than %s ago", lease.Spec.RenewTime.UTC().Format(time.RFC3339), staleAfter)
		return readiness{Condition: cond}
	}
	recheck := lease.Spec.RenewTime.Add(staleAfter).Sub(now)
	if reachable.Status == metav1.ConditionFalse {
		cond.Status, cond.Reason = metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable
		cond.Message = "the agent heartbeats but the host is unreachable at its address: " + reachable.Message
		return readiness{Condition: cond, Recheck: recheck}
	}
	if agent := meta.FindStatusCondition(host.Status.Conditions, cafev1alpha1.ClassicHostAgentReadyCondition); agent != nil && agent.Status != metav1.ConditionTrue {
		cond.Status, cond.Reason = metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonAgentNotReady
		cond.Message = fmt.Sprintf("the agent heartbeats but is not ready: %s: %s", agent.Reason, agent.Message)
		return readiness{Condition: cond, Recheck: recheck}
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating
	cond.Message = fmt.Sprintf("the agent heartbeats (Lease renewed within %s)", staleAfter)
	return readiness{Condition: cond, Recheck: recheck}
}
