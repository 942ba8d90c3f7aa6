package classichost

import (
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
		status     metav1.ConditionStatus
		reason     string
		recheck    time.Duration
	}{
		{"no Lease", nil, nil, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNeverHeartbeated, 0},
		{"Lease never renewed", &coordinationv1.Lease{}, nil, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNeverHeartbeated, 0},
		{"fresh", renewed(10 * time.Second), nil, metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating, 30 * time.Second},
		{"fresh, agent ready", renewed(0), agentSays(metav1.ConditionTrue), metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating, stale},
		{"fresh, agent not ready", renewed(time.Second), agentSays(metav1.ConditionFalse), metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonAgentNotReady, 39 * time.Second},
		{"stale at the bound", renewed(stale), nil, metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale, 0},
		{"stale, agent had said ready", renewed(time.Hour), agentSays(metav1.ConditionTrue), metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-1", Generation: 3}, Status: cafev1alpha1.ClassicHostStatus{Conditions: tc.conditions}}
			got := judgeReady(host, tc.lease, now, stale)
			g.Expect(got.Condition.Type).To(Equal(cafev1alpha1.ClassicHostReadyCondition))
			g.Expect(got.Condition.Status).To(Equal(tc.status))
			g.Expect(got.Condition.Reason).To(Equal(tc.reason))
			g.Expect(got.Condition.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(got.Condition.Message).NotTo(BeEmpty())
			g.Expect(got.Recheck).To(Equal(tc.recheck))
		})
	}
}
