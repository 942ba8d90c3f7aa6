package watchrec

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestCountPodSpecChanges(t *testing.T) {
	cases := []struct {
		name   string
		events []Event
		want   int
	}{
		{
			name: "status, metadata and binding changes are not spec changes",
			events: newStream().
				pod(Added, pod("web-0", withReady(false), withNodeName(""))).
				pod(Modified, pod("web-0", withReady(false))).
				pod(Modified, pod("web-0")).
				pod(Modified, pod("web-0", withFinalizers(registryFinal))).
				events,
			want: 0,
		},
		{
			name: "two in-place image updates are two changes",
			events: newStream().
				pod(Added, pod("web-0")).
				pod(Modified, pod("web-0", withImage("web:v2"))).
				pod(Modified, pod("web-0", withImage("web:v2"), withReady(false))).
				pod(Modified, pod("web-0", withImage("web:v3"))).
				events,
			want: 2,
		},
		{
			name: "a pod deleted and recreated under its name with a new image is no change",
			events: newStream().
				pod(Added, pod("web-0")).
				pod(Deleted, pod("web-0", withDeletionTimestamp())).
				pod(Added, pod("web-0", withUID("uid-second"), withImage("web:v2"))).
				events,
			want: 0,
		},
		{
			name: "changes of other pods are not counted",
			events: newStream().
				pod(Added, pod("web-0")).
				pod(Added, pod("web-1")).
				pod(Modified, pod("web-1", withImage("web:v2"))).
				events,
			want: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(CountPodSpecChanges(tc.events, "web-0")).To(Equal(tc.want))
		})
	}
}

func TestPodHistoryKeepsOnlyThePodInStreamOrder(t *testing.T) {
	g := NewWithT(t)
	events := newStream().
		pod(Added, pod("web-0")).
		pod(Added, pod("web-1")).
		slice(Added, endpointSlice("web-abc", readyEndpoint("web-0"))).
		gap().
		pod(Modified, pod("web-0", withImage("web:v2"))).
		events
	// Reverse the arrival order: the history must come back in resource-version order.
	reversed := make([]Event, len(events))
	for i, ev := range events {
		reversed[len(events)-1-i] = ev
	}

	history := PodHistory(reversed, "web-0")

	g.Expect(history).To(HaveLen(2))
	g.Expect(history[0].Type).To(Equal(Added))
	g.Expect(history[1].Pod.Spec.Containers[0].Image).To(Equal("web:v2"))
	g.Expect(Gaps(reversed)).To(HaveLen(1))
}

func TestReport(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Report(nil)).To(BeEmpty())

	vs := make([]Violation, maxReported+3)
	for i := range vs {
		vs[i] = Violation{Check: CheckNameLossless, Pod: "web-0", Seq: uint64(i + 1), ResourceVersion: 200, Reason: "spec changed"}
	}
	msg := Report(vs)
	g.Expect(msg).To(HavePrefix("53 invariant violation(s)"))
	g.Expect(msg).To(ContainSubstring(`[lossless] event #1 rv=200 pod "web-0": spec changed`))
	g.Expect(msg).To(HaveSuffix("... and 3 more"))
	g.Expect(strings.Count(msg, "\n")).To(Equal(maxReported + 1))
}
