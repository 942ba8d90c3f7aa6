package inplaceset

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// cached is a serving old-revision pod as the cache shows it, with a UID and
// the gate condition on the object itself.
func cached(name string, gate corev1.ConditionStatus, reason string) podState {
	p := serving(name)
	p.Pod.UID = types.UID("uid-" + name)
	p.Pod.Labels = map[string]string{cafev1alpha1.RevisionHashLabel: "r1"}
	p.Pod.Status.Conditions = []corev1.PodCondition{{Type: cafev1alpha1.TrafficReadyCondition, Status: gate, Reason: reason}}
	if gate == corev1.ConditionFalse {
		p = p.draining(reason, false)
	}
	return p
}

func TestExpectationsHideWritesTheCacheDoesNotShowYet(t *testing.T) {
	closeGate := func(x *expectation) { x.Gate, x.Reason = corev1.ConditionFalse, lossless.ReasonDrainForUpdate }
	tests := []struct {
		name    string
		write   func(*expectation)
		pod     podState
		after   time.Duration
		want    func(g Gomega, st podState)
		forgets bool
	}{
		{
			name:  "a gate closed but still open in the cache is draining",
			write: closeGate, pod: cached("a", corev1.ConditionTrue, lossless.ReasonServing),
			want: func(g Gomega, st podState) {
				g.Expect(st.GateOpen).To(BeFalse())
				g.Expect(st.DrainReason).To(Equal(lossless.ReasonDrainForUpdate))
				g.Expect(st.Drained).To(BeFalse())
			},
		},
		{
			name:  "once the cache shows the closed gate the record is dropped",
			write: closeGate, pod: cached("a", corev1.ConditionFalse, lossless.ReasonDrainForUpdate),
			forgets: true,
		},
		{
			name:  "a gate closed for another operation is not the one written",
			write: closeGate, pod: cached("a", corev1.ConditionFalse, lossless.ReasonDrainForDelete),
			want: func(g Gomega, st podState) { g.Expect(st.DrainReason).To(Equal(lossless.ReasonDrainForUpdate)) },
		},
		{
			name:  "an opened gate still closed in the cache is open",
			write: func(x *expectation) { x.Gate, x.Reason = corev1.ConditionTrue, lossless.ReasonServing },
			pod:   cached("a", corev1.ConditionFalse, lossless.ReasonDrainForUpdate),
			want: func(g Gomega, st podState) {
				g.Expect(st.GateOpen).To(BeTrue())
				g.Expect(st.DrainReason).To(BeEmpty())
			},
		},
		{
			name:  "an in-place update not yet seen is updated and pending",
			write: func(x *expectation) { x.Revision = "r2" },
			pod:   cached("a", corev1.ConditionFalse, lossless.ReasonDrainForUpdate),
			want: func(g Gomega, st podState) {
				g.Expect(st.Updated).To(BeTrue())
				g.Expect(st.InPlacePending).To(BeTrue())
			},
		},
		{
			name:  "an in-place update to a revision no longer wanted is not updated",
			write: func(x *expectation) { x.Revision = "r0" },
			pod:   cached("a", corev1.ConditionFalse, lossless.ReasonDrainForUpdate),
			want:  func(g Gomega, st podState) { g.Expect(st.Updated).To(BeFalse()) },
		},
		{
			name:  "a deletion not yet seen is terminating",
			write: func(x *expectation) { x.Deleted = true },
			pod:   cached("a", corev1.ConditionFalse, lossless.ReasonDrainForDelete),
			want:  func(g Gomega, st podState) { g.Expect(st.Terminating).To(BeTrue()) },
		},
		{
			name:  "past the TTL the cache is believed again",
			write: closeGate, pod: cached("a", corev1.ConditionTrue, lossless.ReasonServing),
			after: expectationTTL + time.Second, forgets: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var e expectations
			e.expect(tt.pod.Pod.UID, now, tt.write)
			st := tt.pod
			e.apply(&st, "r2", now.Add(tt.after))
			if tt.forgets {
				g.Expect(st).To(Equal(tt.pod), "the cached state is used as it is")
				g.Expect(e.pods).NotTo(HaveKey(tt.pod.Pod.UID))
				return
			}
			tt.want(g, st)
			g.Expect(e.pods).To(HaveKey(tt.pod.Pod.UID))
		})
	}
}

// A reconcile that runs before the cache shows its predecessor's drains
// plans no drain again and spends no more of maxUnavailable.
func TestPlanDoesNotRepeatWritesTheCacheDoesNotShowYet(t *testing.T) {
	g := NewWithT(t)
	pods := []podState{
		cached("p0", corev1.ConditionTrue, lossless.ReasonServing),
		cached("p1", corev1.ConditionTrue, lossless.ReasonServing),
		cached("p2", corev1.ConditionTrue, lossless.ReasonServing),
	}
	in := planInput{Replicas: 3, MaxUnavailable: 1, Now: now, Pods: pods}
	first := plan(in)
	g.Expect(gateNames(first.CloseGate)).To(Equal([]string{"p0:" + lossless.ReasonDrainForUpdate}))

	var e expectations
	for _, c := range first.CloseGate {
		e.expect(c.Pod.UID, now, func(x *expectation) { x.Gate, x.Reason = corev1.ConditionFalse, c.Reason })
	}
	stale := make([]podState, len(pods))
	for i := range pods {
		stale[i] = pods[i]
		e.apply(&stale[i], "r2", now.Add(time.Second))
	}
	in.Pods = stale
	second := plan(in)
	g.Expect(second.CloseGate).To(BeEmpty(), "p0's drain is in flight and the budget of one is spent on it")
	g.Expect(second.Blocked).To(ContainSubstring("maxUnavailable"))
}

func TestExpectationsSweepRecordsOfPodsThatWentAway(t *testing.T) {
	g := NewWithT(t)
	var e expectations
	e.expect("gone", now, func(x *expectation) { x.Deleted = true })
	e.expect("other", now.Add(expectationTTL+2*time.Second), func(x *expectation) { x.Deleted = true })
	g.Expect(e.pods).NotTo(HaveKey(types.UID("gone")))
	g.Expect(e.pods).To(HaveKey(types.UID("other")))
}
