package inplaceset

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/lossless"
)

// listed is a pod the set's slices list ready; dropped one they carry not
// ready (drained, when nothing else holds it).
func (p podState) listed() podState { p.Listed = true; return p }
func (p podState) dropped(drained bool) podState {
	p.Dropped, p.Drained = true, drained
	return p
}

func TestPlanWithOwnedEndpoints(t *testing.T) {
	tests := []struct {
		name      string
		in        planInput
		unlist    []string
		list      []string
		inPlace   []string
		closeGate []string
	}{
		{
			name:   "an update drops pods from the slices, maxUnavailable at a time, and closes no gate",
			in:     planInput{Replicas: 3, MaxUnavailable: 2, Pods: []podState{serving("a").listed(), serving("b").listed(), serving("c").listed()}},
			unlist: []string{"a", "b"},
		},
		{
			name:    "a dropped pod nothing routes to is updated in place; it is out of service, so the budget is spent",
			in:      planInput{Replicas: 3, MaxUnavailable: 1, Pods: []podState{serving("a").dropped(true), serving("b").listed(), serving("c").listed()}},
			inPlace: []string{"a"},
		},
		{
			name: "a dropped pod another slice still lists waits",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{serving("a").dropped(false), serving("b").listed()}},
		},
		{
			name:      "a pod a traffic provider guards drains through its gate",
			in:        planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{func() podState { p := serving("a").listed(); p.TrafficGuarded = true; return p }(), serving("b").listed()}},
			closeGate: []string{"a:DrainForUpdate"},
		},
		{
			name:      "a change that recreates the pod drains through the gate",
			in:        planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{serving("a").listed().notEligible(), serving("b").listed().notEligible()}},
			closeGate: []string{"a:DrainForUpdate"},
		},
		{
			// The set has just begun to publish: patching pods the slices
			// never carried would skip the budget for all of them at once.
			name: "pods the slices never carried are listed first, not updated",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Pods: []podState{serving("a"), serving("b")}},
			list: []string{"a", "b"},
		},
		{
			name: "an updated pod is listed again once ready for minReadySeconds",
			in: planInput{Replicas: 2, MaxUnavailable: 1, MinReadySeconds: time.Second, Pods: []podState{
				serving("a").updated().dropped(true).readySince(now.Add(-2 * time.Second)), serving("b").updated().dropped(true).readySince(now),
			}},
			list: []string{"a"},
		},
		{
			name: "pause lists a dropped pod again before its update",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Paused: true, Pods: []podState{serving("a").dropped(true), serving("b").listed()}},
			list: []string{"a"},
		},
		{
			name: "a drop already begun is finished before another begins",
			in:   planInput{Replicas: 3, MaxUnavailable: 1, Pods: []podState{serving("a").listed(), serving("b").listed(), serving("c").dropped(false)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tt.in.Now, tt.in.OwnEndpoints = now, true
			got := plan(tt.in)
			g.Expect(names(got.Unlist)).To(ConsistOf(orEmpty(tt.unlist)), "unlist")
			g.Expect(names(got.List)).To(ConsistOf(orEmpty(tt.list)), "list")
			g.Expect(names(got.UpdateInPlace)).To(ConsistOf(orEmpty(tt.inPlace)), "in place")
			g.Expect(gateNames(got.CloseGate)).To(ConsistOf(orEmpty(tt.closeGate)), "close gate")
			g.Expect(got.OpenGate).To(BeEmpty())
		})
	}
}

func TestADroppedPodCountsAsDrainingForAnUpdate(t *testing.T) {
	g := NewWithT(t)
	g.Expect(serving("a").dropped(false).drainingFor(lossless.ReasonDrainForUpdate)).To(BeTrue())
	g.Expect(serving("a").dropped(false).updated().drainingFor(lossless.ReasonDrainForUpdate)).To(BeFalse(), "an updated pod's drop is the wait for it to be ready")
	g.Expect(serving("a").dropped(false).drainingFor(lossless.ReasonDrainForDelete)).To(BeFalse())
}
