package cafedeployment

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/release/plan"
)

var t0 = metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))

// twelveOverThreeZones is the scenario: Beta, batchSize 3.
func twelveOverThreeZones(t *testing.T) plan.Plan {
	t.Helper()
	p, err := plan.New(cafev1alpha1.CafeDeploymentSpec{
		Replicas: ptr.To[int32](12),
		Topology: cafev1alpha1.Topology{Values: []string{"a", "b", "c"}},
		Strategy: cafev1alpha1.CafeDeploymentStrategy{BatchSize: ptr.To(intstr.FromInt32(3))},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func progress(a, b, c int32) map[string]unitProgress {
	return map[string]unitProgress{"a": {a, true}, "b": {b, true}, "c": {c, true}}
}

func TestStepRelease(t *testing.T) {
	p := twelveOverThreeZones(t)
	waitingAtBeta := func() cafev1alpha1.ReleaseStatus {
		return stepRelease(releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), WaitForConfirm: true, Now: t0})
	}
	tests := []struct {
		name  string
		in    releaseInput
		phase cafev1alpha1.ReleasePhase
		group int32
	}{
		{"a new release starts at the beta group", releaseInput{Plan: p, NewRelease: true, Progress: progress(0, 0, 0), Now: t0}, cafev1alpha1.ReleasePhaseProgressing, 0},
		{"a finished beta group waits for confirmation", releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), WaitForConfirm: true, Now: t0}, cafev1alpha1.ReleasePhaseWaitingForConfirm, 0},
		{"without confirmation the release moves on", releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), Now: t0}, cafev1alpha1.ReleasePhaseProgressing, 1},
		{"a unit behind holds the group", releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 0), Now: t0}, cafev1alpha1.ReleasePhaseProgressing, 0},
		{"a pod set that has not observed its spec holds the group", releaseInput{Plan: p, NewRelease: true, Progress: map[string]unitProgress{"a": {1, true}, "b": {1, true}, "c": {1, false}}, Now: t0}, cafev1alpha1.ReleasePhaseProgressing, 0},
		{"a confirmation of the waiting group lets it go on", releaseInput{Plan: p, Release: waitingAtBeta(), Progress: progress(1, 1, 1), WaitForConfirm: true, Confirmation: &confirmation{Group: 0, User: "alice", At: t0}, Now: t0}, cafev1alpha1.ReleasePhaseProgressing, 1},
		{"a confirmation of another group is ignored", releaseInput{Plan: p, Release: waitingAtBeta(), Progress: progress(1, 1, 1), WaitForConfirm: true, Confirmation: &confirmation{Group: 3, User: "alice", At: t0}, Now: t0}, cafev1alpha1.ReleasePhaseWaitingForConfirm, 0},
		{"all pods updated completes the release", releaseInput{Plan: p, NewRelease: true, Progress: progress(4, 4, 4), Now: t0}, cafev1alpha1.ReleasePhaseCompleted, 4},
		{"paused shows as the phase", releaseInput{Plan: p, NewRelease: true, Progress: progress(0, 0, 0), Paused: true, Now: t0}, cafev1alpha1.ReleasePhasePaused, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := stepRelease(tt.in)
			g.Expect(got.Phase).To(Equal(tt.phase))
			g.Expect(got.CurrentGroup).To(HaveValue(Equal(tt.group)))
			g.Expect(got.TotalGroups).To(HaveValue(Equal(int32(len(p.Groups)))))
		})
	}
}

func TestConfirmationIsRecordedWithItsUser(t *testing.T) {
	g := NewWithT(t)
	p := twelveOverThreeZones(t)
	waiting := stepRelease(releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), WaitForConfirm: true, Now: t0})
	early := stepRelease(releaseInput{Plan: p, NewRelease: true, Progress: progress(0, 0, 0), WaitForConfirm: true, Confirmation: &confirmation{Group: 0, User: "mallory", At: t0}, Now: t0})
	g.Expect(early.Groups[0].ConfirmedBy).To(BeEmpty(), "a group cannot be confirmed before it finished")

	stale := stepRelease(releaseInput{Plan: p, Release: waiting, Progress: progress(1, 1, 1), WaitForConfirm: true, Confirmation: &confirmation{Group: 0, User: "mallory", At: metav1.NewTime(t0.Add(-time.Minute))}, Now: t0})
	g.Expect(stale.Phase).To(Equal(cafev1alpha1.ReleasePhaseWaitingForConfirm), "a confirmation given before the group finished must not count")

	got := stepRelease(releaseInput{Plan: p, Release: waiting, Progress: progress(1, 1, 1), WaitForConfirm: true, Confirmation: &confirmation{Group: 0, User: "alice", At: t0}, Now: t0})
	g.Expect(got.Groups[0].ConfirmedBy).To(Equal("alice"))
	g.Expect(got.Groups[0].FinishTime).NotTo(BeNil())
	g.Expect(got.Groups[1].StartTime).NotTo(BeNil())
}

func TestSplitBudgetNeverExceedsTheWaterLevel(t *testing.T) {
	units := []string{"a", "b", "c"}
	per := map[string]int32{"a": 2, "b": 2, "c": 2}
	tests := []struct {
		name   string
		active map[string]bool
		budget int32
		want   map[string]int32
	}{
		{"every active unit gets its own maxUnavailable when the budget allows", map[string]bool{"a": true, "b": true, "c": true}, 6, map[string]int32{"a": 2, "b": 2, "c": 2}},
		{"a tight budget goes to the first units in order", map[string]bool{"a": true, "b": true, "c": true}, 3, map[string]int32{"a": 2, "b": 1, "c": 0}},
		{"inactive units get nothing", map[string]bool{"b": true}, 6, map[string]int32{"b": 2}},
		{"a negative budget gives nothing", map[string]bool{"a": true}, -1, map[string]int32{"a": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := splitBudget(units, tt.active, per, tt.budget)
			g.Expect(got).To(Equal(tt.want))
			var sum int32
			for _, v := range got {
				sum += v
			}
			g.Expect(sum).To(BeNumerically("<=", max(tt.budget, 0)))
		})
	}
}
