package nodelifecycle

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestPolicyStatusCountsTheVerdictsKeepsTheWindowsGrantsAndSaysWhichZonesAreGuarded(t *testing.T) {
	policy := &cafev1alpha1.NodeLifecyclePolicy{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: *defaults()}
	policy.Status.RecentMigrations = []cafev1alpha1.MigrationGrant{grant(now.Add(-10*time.Second), 2), grant(now.Add(-2*time.Minute), 5)}
	states := []nodeState{judged("n1", "a", failed, time.Minute), judged("n2", "a", suspect, time.Minute), judged("n3", "b", healthy, time.Hour), judged("n4", "b", healthy, time.Hour)}
	tests := []struct {
		name    string
		zones   []cafev1alpha1.ZoneHealth
		guarded metav1.ConditionStatus
		reason  string
		message []string
	}{
		{
			name:    "no zone guarded",
			zones:   []cafev1alpha1.ZoneHealth{{Name: "a", Nodes: 2, Unhealthy: 2}, {Name: "b", Nodes: 2}},
			guarded: metav1.ConditionFalse, reason: cafev1alpha1.NodeLifecycleZoneGuardClearReason, message: []string{"no zone is guarded"},
		},
		{
			name:    "a guarded zone is named with its counts",
			zones:   []cafev1alpha1.ZoneHealth{{Name: "a", Nodes: 2, Unhealthy: 2, RecentlyUnhealthy: 2, Guarded: true}, {Name: "b", Nodes: 2}},
			guarded: metav1.ConditionTrue, reason: cafev1alpha1.NodeLifecycleZoneGuardTrippedReason, message: []string{"zone(s) a (2 of 2 nodes Suspect or Failed, 2 of them turned so within"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			st := policyStatus(policy, states, tt.zones, now)
			g.Expect(st.ObservedGeneration).To(Equal(int64(3)))
			g.Expect([]int32{st.Healthy, st.Suspect, st.Failed}).To(Equal([]int32{2, 1, 1}))
			g.Expect(st.RecentMigrations).To(Equal([]cafev1alpha1.MigrationGrant{grant(now.Add(-10*time.Second), 2)}), "grants out of the window are dropped")
			g.Expect(st.Zones).To(Equal(tt.zones))
			c := meta.FindStatusCondition(st.Conditions, cafev1alpha1.NodeLifecycleZoneGuardCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(tt.guarded))
			g.Expect(c.Reason).To(Equal(tt.reason))
			for _, m := range tt.message {
				g.Expect(c.Message).To(ContainSubstring(m))
			}
			g.Expect(policy.Status.Conditions).To(BeEmpty(), "the policy read is left as it was")
		})
	}
}
