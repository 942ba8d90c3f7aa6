package classichost

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestJudgeReady(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	const stale = 40 * time.Second
	renewed := func(ago time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now.Add(-ago)}}}
	}
	agentSays := func(s metav1.ConditionStatus) []metav1.Condition {
		return []metav1.Condition{{Type: cafev1alpha1.ClassicHostAgentReadyCondition, Status: s, Reason: "WorkDirNotWritable", Message: "/var/lib/cafe: read-only"}}
	}
	for _, tc := range []struct {
		name       string
		lease      *coordinationv1.Lease
		conditions []metav1.Condition
		reachable  metav1.ConditionStatus
		status     metav1.ConditionStatus
		reason     string
		recheck    time.Duration
	}{
		{"no Lease", nil, nil, metav1.ConditionTrue, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNeverHeartbeated, 0},
		{"Lease never renewed", &coordinationv1.Lease{}, nil, metav1.ConditionTrue, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNeverHeartbeated, 0},
		{"fresh", renewed(10 * time.Second), nil, metav1.ConditionTrue, metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating, 30 * time.Second},
		{"fresh, reachability not known yet", renewed(10 * time.Second), nil, metav1.ConditionUnknown, metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating, 30 * time.Second},
		{"fresh, agent ready", renewed(0), agentSays(metav1.ConditionTrue), metav1.ConditionTrue, metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating, stale},
		{"fresh, agent not ready", renewed(time.Second), agentSays(metav1.ConditionFalse), metav1.ConditionTrue, metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonAgentNotReady, 39 * time.Second},
		{"fresh, unreachable", renewed(time.Second), agentSays(metav1.ConditionTrue), metav1.ConditionFalse, metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable, 39 * time.Second},
		{"stale at the bound", renewed(stale), nil, metav1.ConditionTrue, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale, 0},
		{"stale, agent had said ready", renewed(time.Hour), agentSays(metav1.ConditionTrue), metav1.ConditionTrue, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale, 0},
		{"stale and unreachable", renewed(time.Hour), nil, metav1.ConditionFalse, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-1", Generation: 3}, Status: cafev1alpha1.ClassicHostStatus{Conditions: tc.conditions}}
			reachable := metav1.Condition{Type: cafev1alpha1.ClassicHostReachableCondition, Status: tc.reachable, Message: "probe says so"}
			got := judgeReady(host, tc.lease, reachable, now, stale)
			g.Expect(got.Condition.Type).To(Equal(cafev1alpha1.ClassicHostReadyCondition))
			g.Expect(got.Condition.Status).To(Equal(tc.status))
			g.Expect(got.Condition.Reason).To(Equal(tc.reason))
			g.Expect(got.Condition.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(got.Condition.Message).NotTo(BeEmpty())
			g.Expect(got.Recheck).To(Equal(tc.recheck))
		})
	}
}

func TestJudgeReachable(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	const after = 6 * time.Second
	refused := errors.New("connect: connection refused")
	prior := func(status metav1.ConditionStatus, reason string, ago time.Duration) []metav1.Condition {
		return []metav1.Condition{{Type: cafev1alpha1.ClassicHostReachableCondition, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(now.Add(-ago))}}
	}
	endpoint := &cafev1alpha1.ClassicHostAgentEndpoint{Port: 10351}
	for _, tc := range []struct {
		name       string
		endpoint   *cafev1alpha1.ClassicHostAgentEndpoint
		conditions []metav1.Condition
		probe      error
		status     metav1.ConditionStatus
		reason     string
	}{
		{"no endpoint published", nil, nil, nil, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNoEndpoint},
		{"answers", endpoint, nil, nil, metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonAnswering},
		{"answers again", endpoint, prior(metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable, time.Hour), nil, metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonAnswering},
		{"first failure", endpoint, prior(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonAnswering, time.Hour), refused, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonProbeFailing},
		{"failing, within the bound", endpoint, prior(metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonProbeFailing, after-time.Second), refused, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonProbeFailing},
		{"failing for the bound", endpoint, prior(metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonProbeFailing, after), refused, metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable},
		{"still unreachable", endpoint, prior(metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable, time.Second), refused, metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable},
		{"failing after the endpoint was missing", endpoint, prior(metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNoEndpoint, time.Hour), refused, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonProbeFailing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-1", Generation: 2},
				Spec:   cafev1alpha1.ClassicHostSpec{Address: "198.19.224.1"},
				Status: cafev1alpha1.ClassicHostStatus{AgentEndpoint: tc.endpoint, Conditions: tc.conditions}}
			got := judgeReachable(host, tc.probe, now, after)
			g.Expect(got.Type).To(Equal(cafev1alpha1.ClassicHostReachableCondition))
			g.Expect([]string{string(got.Status), got.Reason}).To(Equal([]string{string(tc.status), tc.reason}))
			g.Expect(got.ObservedGeneration).To(Equal(int64(2)))
			if tc.probe != nil {
				g.Expect(got.Message).To(ContainSubstring("connection refused"))
			}
		})
	}
}
