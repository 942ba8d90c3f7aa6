package inplaceset

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/lossless/losslesstest"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// serving is an old-revision pod that is ready and open to traffic.
func serving(name string) podState {
	return podState{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, Ready: true, ContainersReady: true, ReadySince: now.Add(-time.Hour), GateOpen: true, InPlaceEligible: true}
}

func (p podState) updated() podState     { p.Updated = true; return p }
func (p podState) notEligible() podState { p.InPlaceEligible = false; return p }
func (p podState) readySince(t time.Time) podState {
	p.ReadySince = t
	return p
}
func (p podState) draining(reason string, drained bool) podState {
	p.GateOpen, p.Ready, p.DrainReason, p.Drained = false, false, reason, drained
	return p
}
func (p podState) notReady() podState { p.Ready, p.GateOpen = false, false; return p }

var (
	names     = losslesstest.PodNames
	gateNames = losslesstest.GateNames
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name          string
		in            planInput
		createUpdated int
		createCurrent int
		closeGate     []string
		inPlace       []string
		deleted       []string
		opened        []string
		requeue       time.Duration
	}{
		{
			name:          "an empty set creates every replica at the update revision",
			in:            planInput{Replicas: 3, MaxUnavailable: 1},
			createUpdated: 3,
		},
		{
			name:      "an update drains one pod at a time with maxUnavailable 1",
			in:        planInput{Replicas: 3, MaxUnavailable: 1, Pods: []podState{serving("a"), serving("b"), serving("c")}},
			closeGate: []string{"a:DrainForUpdate"},
		},
		{
			// A recreated pod comes back at the update revision; choosing
			// another old pod instead created the replacement at the current
			// revision, and the set replaced pods in a loop.
			name:          "a pod deleted to be recreated under a partition comes back updated, and no other pod is drained for it",
			in:            planInput{Replicas: 3, Partition: 1, MaxUnavailable: 1, Pods: []podState{serving("a").updated(), func() podState { p := serving("b"); p.Terminating = true; return p }(), serving("c")}},
			createUpdated: 1,
		},
		{
			name:      "maxUnavailable 2 drains two pods at once",
			in:        planInput{Replicas: 3, MaxUnavailable: 2, Pods: []podState{serving("a"), serving("b"), serving("c")}},
			closeGate: []string{"a:DrainForUpdate", "b:DrainForUpdate"},
		},
		{
			name: "a pod still held by traffic is waited for, and uses the budget",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{serving("a").draining(lossless.ReasonDrainForUpdate, false), serving("b")}},
		},
		{
			name:    "a drained pod whose change is only images is updated in place",
			in:      planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{serving("a").draining(lossless.ReasonDrainForUpdate, true), serving("b")}},
			inPlace: []string{"a"},
		},
		{
			name:    "a drained pod whose change is more than images is deleted to be recreated",
			in:      planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{serving("a").notEligible().draining(lossless.ReasonDrainForUpdate, true), serving("b")}},
			deleted: []string{"a"},
		},
		{
			name:    "an updated pod ready for less than minReadySeconds waits for the rest of it",
			in:      planInput{Replicas: 1, MaxUnavailable: 1, MinReadySeconds: 10 * time.Second, Now: now, Pods: []podState{serving("a").updated().draining(lossless.ReasonDrainForUpdate, true).readySince(now.Add(-4 * time.Second))}},
			requeue: 6 * time.Second,
		},
		{
			name:   "an updated pod ready for minReadySeconds gets its gate opened",
			in:     planInput{Replicas: 1, MaxUnavailable: 1, MinReadySeconds: 10 * time.Second, Now: now, Pods: []podState{serving("a").updated().draining(lossless.ReasonDrainForUpdate, true).readySince(now.Add(-10 * time.Second))}},
			opened: []string{"a"},
		},
		{
			name: "a pod whose in-place update the kubelet has not reported keeps its gate closed",
			in: planInput{Replicas: 1, MaxUnavailable: 1, Now: now, Pods: []podState{func() podState {
				p := serving("a").updated().draining(lossless.ReasonDrainForUpdate, true)
				p.InPlacePending = true
				return p
			}()}},
		},
		{
			name:      "a partition keeps that many pods on the current revision",
			in:        planInput{Replicas: 3, Partition: 2, MaxUnavailable: 3, Pods: []podState{serving("a"), serving("b"), serving("c")}},
			closeGate: []string{"a:DrainForUpdate"},
		},
		{
			name:      "pods already updated count toward the partition target",
			in:        planInput{Replicas: 3, Partition: 1, MaxUnavailable: 3, Pods: []podState{serving("a").updated(), serving("b"), serving("c")}},
			closeGate: []string{"b:DrainForUpdate"},
		},
		{
			name: "a pod ready again after a crash is not available before minReadySeconds: it uses the budget",
			in: planInput{Replicas: 2, MaxUnavailable: 1, MinReadySeconds: 10 * time.Second, Now: now, Pods: []podState{
				serving("a").readySince(now.Add(-3 * time.Second)), serving("b"),
			}},
			closeGate: []string{"a:DrainForUpdate"},
			requeue:   7 * time.Second,
		},
		{
			name:      "a not-ready pod is updated first without spending the budget it already uses",
			in:        planInput{Replicas: 3, MaxUnavailable: 2, Pods: []podState{serving("a"), serving("b"), serving("c").notReady()}},
			closeGate: []string{"c:DrainForUpdate", "a:DrainForUpdate"},
		},
		{
			name: "paused starts no drain and cancels a drain not yet acted on",
			in: planInput{Replicas: 2, MaxUnavailable: 1, Paused: true, Now: now, Pods: []podState{
				serving("a").draining(lossless.ReasonDrainForUpdate, true), serving("b"),
			}},
			opened: []string{"a"},
		},
		{
			name:      "a raised partition cancels a drain that is no longer wanted",
			in:        planInput{Replicas: 2, Partition: 2, MaxUnavailable: 1, Now: now, Pods: []podState{serving("a").draining(lossless.ReasonDrainForUpdate, false), serving("b")}},
			opened:    []string{"a"},
			closeGate: nil,
		},
		{
			name:      "scale-in drains the surplus for deletion, not-ready and old pods first",
			in:        planInput{Replicas: 1, MaxUnavailable: 1, Pods: []podState{serving("a").updated(), serving("b"), serving("c").updated().notReady()}},
			closeGate: []string{"c:DrainForDelete", "b:DrainForDelete"},
		},
		{
			name:    "a pod drained for deletion is deleted",
			in:      planInput{Replicas: 1, MaxUnavailable: 1, Pods: []podState{serving("a").updated(), serving("b").draining(lossless.ReasonDrainForDelete, true)}},
			deleted: []string{"b"},
		},
		{
			name:          "a replaced pod is recreated at the current revision when the partition is met",
			in:            planInput{Replicas: 3, Partition: 2, MaxUnavailable: 1, Pods: []podState{serving("a").updated(), serving("b")}},
			createCurrent: 1,
		},
		{
			name: "a pod whose deletion was requested is drained for deletion and replaced",
			in: planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{
				func() podState { p := serving("a").updated(); p.DeleteRequested = true; return p }(), serving("b").updated(),
			}},
			closeGate:     []string{"a:DrainForDelete"},
			createUpdated: 1,
		},
		{
			name: "terminating pods count as missing and block further drains",
			in: planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{
				func() podState { p := serving("a"); p.Terminating = true; return p }(), serving("b"),
			}},
			createUpdated: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			if tt.in.Now.IsZero() {
				tt.in.Now = now
			}
			got := plan(tt.in)
			g.Expect(got.CreateUpdated).To(Equal(tt.createUpdated), "create at update revision")
			g.Expect(got.CreateCurrent).To(Equal(tt.createCurrent), "create at current revision")
			g.Expect(gateNames(got.CloseGate)).To(ConsistOf(orEmpty(tt.closeGate)), "close gate")
			g.Expect(names(got.UpdateInPlace)).To(ConsistOf(orEmpty(tt.inPlace)), "in place")
			g.Expect(names(got.Delete)).To(ConsistOf(orEmpty(tt.deleted)), "delete")
			g.Expect(names(got.OpenGate)).To(ConsistOf(orEmpty(tt.opened)), "open gate")
			g.Expect(got.RequeueAfter).To(Equal(tt.requeue))
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestInPlacePendingUntilTheKubeletReportsTheRestart(t *testing.T) {
	pod := func(image, imageID string, restarts int32) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Labels:      map[string]string{"cafe.io/revision-hash": "r2"},
				Annotations: map[string]string{inPlaceStateAnnotation: `{"revision":"r2","imageIDs":{"app":"id-1"},"restartCounts":{"app":0}}`},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v2"}}},
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: image, ImageID: imageID, RestartCount: restarts, Ready: true}}
		return p
	}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		pending bool
	}{
		{"the old image still reported is pending", pod("app:v1", "id-1", 0), true},
		{"the spec's image reported is done", pod("app:v2", "id-2", 1), false},
		{"a normalised name with a new image ID is done", pod("docker.io/library/app:v2", "id-2", 1), false},
		{"a tag moved to the same digest is done once the container restarted", pod("docker.io/library/app:v2", "id-1", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(inPlacePending(tt.pod)).To(Equal(tt.pending))
		})
	}
}

func TestCheaperFirstPrefersAPodDrainingForTheOperationThenANotReadyOne(t *testing.T) {
	forDelete, forUpdate := lossless.ReasonDrainForDelete, lossless.ReasonDrainForUpdate
	tests := []struct {
		name          string
		a, b          podState
		less, decided bool
	}{
		{"a pod draining for the operation comes first", serving("a").draining(forDelete, false), serving("b"), true, true},
		{"even before a pod that is not ready", serving("a").notReady(), serving("b").draining(forDelete, false), false, true},
		{"a drain for another operation does not count as begun", serving("a").draining(forUpdate, false), serving("b").notReady(), false, false},
		{"a pod that is not ready comes before a serving one", serving("a"), serving("b").notReady(), false, true},
		{"two serving pods are left to the caller", serving("a"), serving("b"), false, false},
		{"so are two pods draining for the operation", serving("a").draining(forDelete, true), serving("b").draining(forDelete, false), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			less, decided := cheaperFirst(tt.a, tt.b, forDelete)
			g.Expect(decided).To(Equal(tt.decided), "decided")
			g.Expect(less).To(Equal(tt.less), "less")
		})
	}
}

// withGateClosedAt gives the pod the closed gate its drain started with.
func (p podState) withGateClosedAt(t time.Time, holders ...string) podState {
	pod := p.Pod.DeepCopy()
	pod.Status.Conditions = []corev1.PodCondition{{Type: cafev1alpha1.TrafficReadyCondition, Status: corev1.ConditionFalse, Reason: p.DrainReason, LastTransitionTime: metav1.NewTime(t)}}
	p.Pod, p.TrafficHolders = pod, holders
	return p
}

// A drain the traffic systems hold for longer than a normal one is named
// for the status (the release waits on it), nothing is operated on, and a
// younger held drain asks for a reconcile when it would count as held.
func TestPlanReportsADrainHeldByTraffic(t *testing.T) {
	g := NewWithT(t)
	finalizer := "traffic provider finalizer traffic.cafe.io/gateway"
	old := serving("a").draining(lossless.ReasonDrainForUpdate, false).withGateClosedAt(now.Add(-time.Minute), finalizer)
	young := serving("b").draining(lossless.ReasonDrainForUpdate, false).withGateClosedAt(now.Add(-time.Second), finalizer)
	out := plan(planInput{Replicas: 2, MaxUnavailable: 2, Now: now, Pods: []podState{young, old}})
	g.Expect(out.HeldDrain).To(And(HavePrefix("pod a has been draining since"), HaveSuffix(finalizer)))
	g.Expect(out.UpdateInPlace).To(BeEmpty())
	g.Expect(out.Delete).To(BeEmpty())
	g.Expect(out.RequeueAfter).To(Equal(lossless.SlowDrain - time.Second))

	out = plan(planInput{Replicas: 2, MaxUnavailable: 2, Now: now, Pods: []podState{young}})
	g.Expect(out.HeldDrain).To(BeEmpty(), "a drain younger than lossless.SlowDrain is not reported")
}
