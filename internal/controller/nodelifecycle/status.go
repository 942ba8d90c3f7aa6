package nodelifecycle

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// policyStatus is the policy's status after a reconcile: the nodes by
// verdict, the zones, the rate limit's grants still in its window and the
// ZoneGuard condition, which says which zones are guarded and why.
func policyStatus(policy *cafev1alpha1.NodeLifecyclePolicy, states []nodeState, zones []cafev1alpha1.ZoneHealth, now time.Time) *cafev1alpha1.NodeLifecyclePolicyStatus {
	st := policy.Status.DeepCopy()
	st.ObservedGeneration = policy.Generation
	st.RecentMigrations = rateWindow{window: rateLimitWindow, grants: st.RecentMigrations}.current(now)
	st.RecentTaints = rateWindow{window: rateLimitWindow, grants: st.RecentTaints}.current(now)
	st.Healthy, st.Suspect, st.Failed = 0, 0, 0
	for _, s := range states {
		if s.Host != nil {
			continue // hosts are listed in unhealthyHosts, not counted
		}
		switch s.Judgement.Verdict {
		case cafev1alpha1.NodeVerdictFailed:
			st.Failed++
		case cafev1alpha1.NodeVerdictSuspect:
			st.Suspect++
		default:
			st.Healthy++
		}
	}
	st.Zones = zones
	st.UnhealthyNodes, st.UnhealthyHosts = nil, nil
	for _, s := range states {
		if !unhealthy(s.Judgement.Verdict) {
			continue
		}
		since := metav1.NewTime(s.VerdictSince.Truncate(time.Second))
		if s.Host != nil {
			st.UnhealthyHosts = append(st.UnhealthyHosts, cafev1alpha1.HostVerdictRecord{Host: s.Name, Verdict: s.Judgement.Verdict, Since: since})
		} else {
			st.UnhealthyNodes = append(st.UnhealthyNodes, cafev1alpha1.NodeVerdictRecord{Node: s.Name, Verdict: s.Judgement.Verdict, Since: since})
		}
	}
	var guarded []string
	for _, z := range zones {
		if z.Guarded {
			guarded = append(guarded, fmt.Sprintf("%s (%d of %s Suspect or Failed, %d of them turned so within %ds)", z.Name, z.Unhealthy, members(z), z.RecentlyUnhealthy, policy.Spec.ZoneGuard.WindowSeconds))
		}
	}
	cond := metav1.Condition{Type: cafev1alpha1.NodeLifecycleZoneGuardCondition, Status: metav1.ConditionFalse, Reason: cafev1alpha1.NodeLifecycleZoneGuardClearReason, Message: "no zone is guarded", ObservedGeneration: policy.Generation}
	if len(guarded) > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, cafev1alpha1.NodeLifecycleZoneGuardTrippedReason
		cond.Message = fmt.Sprintf("more than %d%% of the nodes are Suspect or Failed in zone(s) %s: CAFE assumes a partition or a monitoring fault and migrates nothing there; check the zone's network and monitoring", policy.Spec.ZoneGuard.MaxUnhealthyPercent, strings.Join(guarded, ", "))
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	return st
}
