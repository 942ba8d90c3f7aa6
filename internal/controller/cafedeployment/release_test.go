package cafedeployment

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment/podset"
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
		{"a finished group stays done while a pod set has not observed a spec changed since", releaseInput{Plan: p, Release: waitingAtBeta(), Progress: map[string]unitProgress{"a": {1, true}, "b": {1, true}, "c": {1, false}}, WaitForConfirm: true, Now: t0}, cafev1alpha1.ReleasePhaseWaitingForConfirm, 0},
		{"a finished group whose pod stopped serving is in progress again", releaseInput{Plan: p, Release: waitingAtBeta(), Progress: progress(1, 1, 0), WaitForConfirm: true, Now: t0}, cafev1alpha1.ReleasePhaseProgressing, 0},
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

func TestConfirmationOfReadsOnlyWhatTheWebhookCanHaveStamped(t *testing.T) {
	annotated := func(group, by, at string) *cafev1alpha1.CafeDeployment {
		return &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			cafev1alpha1.ConfirmGroupAnnotation: group, cafev1alpha1.ConfirmedByAnnotation: by, cafev1alpha1.ConfirmedAtAnnotation: at,
		}}}
	}
	tests := []struct {
		name string
		cd   *cafev1alpha1.CafeDeployment
		want *confirmation
	}{
		{name: "a stamped confirmation", cd: annotated("2", "alice", "2026-01-02T03:04:05Z"),
			want: &confirmation{Group: 2, User: "alice", At: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}},
		{name: "an unreadable time is the zero time, which confirms nothing finished", cd: annotated("0", "alice", "soon"),
			want: &confirmation{Group: 0, User: "alice"}},
		{name: "no user", cd: annotated("1", "", "2026-01-02T03:04:05Z")},
		{name: "no group", cd: annotated("one", "alice", "2026-01-02T03:04:05Z")},
		{name: "a user too long for the webhook to have stamped", cd: annotated("1", strings.Repeat("m", cafev1alpha1.MaxRecordedUserLength+1), "2026-01-02T03:04:05Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(confirmationOf(tt.cd)).To(Equal(tt.want))
		})
	}
}

func TestAdvanceReleaseKeepsTheRevisionsStraight(t *testing.T) {
	p := twelveOverThreeZones(t)
	done := reportsOf(serving(4), serving(4), serving(4))
	tests := []struct {
		name     string
		status   cafev1alpha1.CafeDeploymentStatus
		reports  map[string]podset.UnitReport
		want     revisionChange
		current  string
		phase    cafev1alpha1.ReleasePhase
		group    int32
		fast     bool
		confirms bool
	}{
		{
			name:    "the first revision is released at once, every group, and is current",
			reports: reportsOf(podset.UnitReport{}, podset.UnitReport{}, podset.UnitReport{}),
			want:    revisionChange{isNew: true}, current: "new", phase: cafev1alpha1.ReleasePhaseCompleted, group: 4,
		},
		{
			name:    "a new template starts a release from the revision it replaces, which the history keeps",
			status:  cafev1alpha1.CafeDeploymentStatus{UpdateRevision: "old", CurrentRevision: "old", Release: cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseCompleted, CurrentGroup: ptr.To[int32](4)}},
			reports: reportsOf(serving(0), serving(0), serving(0)),
			want:    revisionChange{isNew: true, outgoing: "old"}, current: "old", phase: cafev1alpha1.ReleasePhaseProgressing, group: 0,
		},
		{
			name:    "a template changed again mid-release replaces the revision being released",
			status:  cafev1alpha1.CafeDeploymentStatus{UpdateRevision: "mid", CurrentRevision: "old", Release: atGroup(2)},
			reports: reportsOf(serving(0), serving(0), serving(0)),
			want:    revisionChange{isNew: true, outgoing: "mid"}, current: "mid", phase: cafev1alpha1.ReleasePhaseProgressing, group: 0,
		},
		{
			name:    "a release that completes at once makes its revision current, and the history still keeps the one it replaced",
			status:  cafev1alpha1.CafeDeploymentStatus{UpdateRevision: "old", CurrentRevision: "old"},
			reports: done,
			want:    revisionChange{isNew: true, outgoing: "old"}, current: "new", phase: cafev1alpha1.ReleasePhaseCompleted, group: 4,
		},
		{
			name:    "the same template records nothing new and the release goes on",
			status:  cafev1alpha1.CafeDeploymentStatus{UpdateRevision: "new", CurrentRevision: "old", Release: atGroup(1)},
			reports: reportsOf(serving(2), serving(2), serving(1)),
			want:    revisionChange{outgoing: "old"}, current: "old", phase: cafev1alpha1.ReleasePhaseProgressing, group: 1,
		},
		{
			name:     "a finished group waits for its confirmation",
			status:   cafev1alpha1.CafeDeploymentStatus{UpdateRevision: "old", CurrentRevision: "old"},
			reports:  reportsOf(serving(1), serving(1), serving(1)),
			confirms: true,
			want:     revisionChange{isNew: true, outgoing: "old"}, current: "old", phase: cafev1alpha1.ReleasePhaseWaitingForConfirm, group: 0,
		},
		{
			name:     "a fast release waits for no confirmation",
			status:   cafev1alpha1.CafeDeploymentStatus{UpdateRevision: "old", CurrentRevision: "old"},
			reports:  reportsOf(serving(1), serving(1), serving(1)),
			confirms: true, fast: true,
			want: revisionChange{isNew: true, outgoing: "old"}, current: "old", phase: cafev1alpha1.ReleasePhaseProgressing, group: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cd := &cafev1alpha1.CafeDeployment{Status: tt.status}
			cd.Spec.Strategy.NeedWaitingForConfirm = ptr.To(tt.confirms)
			got := advanceRelease(cd, p, tt.reports, "new", tt.fast, t0)
			g.Expect(got).To(Equal(tt.want))
			g.Expect(cd.Status.UpdateRevision).To(Equal("new"))
			g.Expect(cd.Status.CurrentRevision).To(Equal(tt.current), "current revision")
			g.Expect(cd.Status.Release.Phase).To(Equal(tt.phase))
			g.Expect(cd.Status.Release.CurrentGroup).To(HaveValue(Equal(tt.group)))
		})
	}
}

// Where the release flows past a group, the next group starts with it (its
// record says so); where a confirmation is awaited it does not.
func TestStepReleaseStartsTheNextGroupWhereItFlows(t *testing.T) {
	g := NewWithT(t)
	p := twelveOverThreeZones(t)
	// g0(beta) a=1 b=1 c=1 | g1 a=1 b=1 c=1 | g2 … | g3 …
	started := func(r cafev1alpha1.ReleaseStatus) []int32 {
		var out []int32
		for _, gr := range r.Groups {
			if gr.StartTime != nil {
				out = append(out, gr.Index)
			}
		}
		return out
	}
	beta := stepRelease(releaseInput{Plan: p, NewRelease: true, Progress: progress(0, 0, 0), Now: t0})
	g.Expect(started(beta)).To(Equal([]int32{0}), "the end of the beta group is a barrier")

	flowing := stepRelease(releaseInput{Plan: p, Release: beta, Progress: progress(1, 1, 1), Now: t0})
	g.Expect(flowing.CurrentGroup).To(HaveValue(Equal(int32(1))))
	g.Expect(started(flowing)).To(Equal([]int32{0, 1, 2, 3}), "every group after the beta one starts with the first of them")
	g.Expect(operatedThrough(p, 1, never)).To(Equal(int32(3)))
	g.Expect(operatedThrough(p, 1, func(k int32) bool { return k == 2 })).To(Equal(int32(2)), "a group held after it stops the flow there")

	gated := stepRelease(releaseInput{Plan: p, Release: beta, Progress: progress(1, 1, 1), WaitForConfirm: true, Now: t0})
	g.Expect(gated.Phase).To(Equal(cafev1alpha1.ReleasePhaseWaitingForConfirm))
	g.Expect(started(gated)).To(Equal([]int32{0}))
	g.Expect(operatedThrough(p, 1, always)).To(Equal(int32(1)))

	last := stepRelease(releaseInput{Plan: p, Release: flowing, Progress: progress(3, 3, 3), Now: t0})
	g.Expect(last.CurrentGroup).To(HaveValue(Equal(int32(3))))
	g.Expect(started(last)).To(Equal([]int32{0, 1, 2, 3}), "the last group flows nowhere")
}

func TestATrafficStepHoldsItsGroupUntilItsDurationSinceTheRouteWasSteered(t *testing.T) {
	g := NewWithT(t)
	p := twelveOverThreeZones(t)
	traffic := &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: []cafev1alpha1.TrafficStep{{Group: 0, Weight: ptr.To[int32](10), DurationSeconds: ptr.To[int32](60)}}}
	in := releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), Traffic: traffic, Now: t0}

	r := stepRelease(in)
	g.Expect(r.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
	g.Expect(*r.CurrentGroup).To(BeEquivalentTo(0))
	g.Expect(r.Groups).To(HaveLen(1), "the step is a barrier: group 1 does not start with it")
	g.Expect(r.Groups[0].Traffic).To(Equal(&cafev1alpha1.TrafficStepStatus{Split: "10% to web-canary"}), "begun, not yet steered")
	g.Expect(operatedThrough(p, 0, func(k int32) bool { return stepAfter(traffic, &r, k) != nil })).To(BeEquivalentTo(0))

	// Time does not count before the route was steered.
	in.NewRelease, in.Release, in.Now = false, r, metav1.NewTime(t0.Add(time.Hour))
	g.Expect(stepRelease(in).Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))

	r.Groups[0].Traffic.StartTime = ptr.To(t0)
	in.Release, in.Now = r, metav1.NewTime(t0.Add(59*time.Second))
	g.Expect(stepRelease(in).Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))

	in.Now = metav1.NewTime(t0.Add(60 * time.Second))
	done := stepRelease(in)
	g.Expect(done.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing))
	g.Expect(*done.CurrentGroup).To(BeEquivalentTo(1))
	g.Expect(done.Groups[0].Traffic.EndTime).To(HaveValue(Equal(in.Now)))
}

func TestATrafficStepWithoutADurationEndsWithItsGroupsConfirmation(t *testing.T) {
	g := NewWithT(t)
	p := twelveOverThreeZones(t)
	traffic := &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: []cafev1alpha1.TrafficStep{{Group: 0, Headers: []cafev1alpha1.TrafficHeader{{Name: "x-cafe-canary", Value: "always"}}}}}
	in := releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), Traffic: traffic, Now: t0}
	r := stepRelease(in)
	g.Expect(r.Groups[0].Traffic.Split).To(Equal("requests with x-cafe-canary: always to web-canary"))
	r.Groups[0].Traffic.StartTime = ptr.To(t0)

	in.NewRelease, in.Release, in.Now = false, r, metav1.NewTime(t0.Add(24*time.Hour))
	g.Expect(stepRelease(in).Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying), "no duration: only a confirmation ends it")

	in.Confirmation = &confirmation{Group: 0, User: "alice", At: in.Now}
	done := stepRelease(in)
	g.Expect(done.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing))
	g.Expect(done.Groups[0].ConfirmedBy).To(Equal("alice"))
	g.Expect(done.Groups[0].Traffic.EndTime).NotTo(BeNil())
}

func TestAReleaseReplacingAnUnfinishedOneSkipsItsTrafficSteps(t *testing.T) {
	g := NewWithT(t)
	p := twelveOverThreeZones(t)
	traffic := &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: []cafev1alpha1.TrafficStep{{Group: 0, Weight: ptr.To[int32](10)}}}
	failed := cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseFailed, CurrentGroup: ptr.To[int32](0), TotalGroups: ptr.To[int32](5)}

	r := stepRelease(releaseInput{Plan: p, Release: failed, NewRelease: true, Progress: progress(1, 1, 1), Traffic: traffic, Now: t0})
	g.Expect(r.TrafficStepsSkipped).To(BeTrue())
	g.Expect(r.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing), "no step holds the rollback")
	g.Expect(*r.CurrentGroup).To(BeEquivalentTo(1))

	completed := cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseCompleted, CurrentGroup: ptr.To[int32](5), TotalGroups: ptr.To[int32](5)}
	r = stepRelease(releaseInput{Plan: p, Release: completed, NewRelease: true, Progress: progress(1, 1, 1), Traffic: traffic, Now: t0})
	g.Expect(r.TrafficStepsSkipped).To(BeFalse())
	g.Expect(r.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
}

func TestABegunTrafficStepKeepsRunningWhenItsGroupIsInProgressAgain(t *testing.T) {
	g := NewWithT(t)
	p := twelveOverThreeZones(t)
	traffic := &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: []cafev1alpha1.TrafficStep{{Group: 0, Weight: ptr.To[int32](10)}}}
	in := releaseInput{Plan: p, NewRelease: true, Progress: progress(1, 1, 1), Traffic: traffic, Now: t0}
	cd := &cafev1alpha1.CafeDeployment{Spec: cafev1alpha1.CafeDeploymentSpec{Strategy: cafev1alpha1.CafeDeploymentStrategy{Traffic: traffic}}}

	cd.Status.Release = stepRelease(releaseInput{Plan: p, NewRelease: true, Progress: progress(0, 0, 0), Traffic: traffic, Now: t0})
	_, step := runningTrafficStep(cd)
	g.Expect(step).To(BeNil(), "the group's pods are still being updated")
	g.Expect(stepAhead(cd)).To(BeTrue(), "the updated pods get nothing until the step begins")

	r := stepRelease(in)
	r.Groups[0].Traffic.StartTime = ptr.To(t0)
	in.NewRelease, in.Release, in.Progress = false, r, progress(1, 1, 0)
	cd.Status.Release = stepRelease(in)
	g.Expect(cd.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing), "a pod of the group stopped serving")
	group, step := runningTrafficStep(cd)
	g.Expect(step).To(Equal(&traffic.Steps[0]), "the step goes on")
	g.Expect(group.Index).To(BeEquivalentTo(0))
	g.Expect(stepAhead(cd)).To(BeFalse())
}

// never and always are heldAfter functions: no group held, every group held.
func never(int32) bool  { return false }
func always(int32) bool { return true }
