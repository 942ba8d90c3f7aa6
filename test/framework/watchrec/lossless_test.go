package watchrec

import (
	"testing"

	. "github.com/onsi/gomega"
)

// wantViolation describes an expected violation: its pod and fragments of its reason.
type wantViolation struct {
	pod      string
	contains []string
}

func expectViolations(g Gomega, got []Violation, want []wantViolation) {
	g.Expect(got).To(HaveLen(len(want)), "violations:\n%s", Report(got))
	for i, w := range want {
		g.Expect(got[i].Pod).To(Equal(w.pod), "violation %d: %s", i, got[i])
		for _, c := range w.contains {
			g.Expect(got[i].Reason).To(ContainSubstring(c), "violation %d", i)
		}
	}
}

// drainedWeb0 is the start of most scenarios: web-0 serving with the registry's
// finalizer, then drained by the protocol (gate False, slice drops it, the registry
// removes its finalizer).
func drainedWeb0() *stream {
	return newStream().
		pod(Added, pod("web-0", withFinalizers(registryFinal))).
		slice(Added, endpointSlice("web-abc", readyEndpoint("web-0"))).
		pod(Modified, pod("web-0", withReady(false), withFinalizers(registryFinal))).
		slice(Modified, endpointSlice("web-abc", drainedEndpoint("web-0"))).
		pod(Modified, pod("web-0", withReady(false)))
}

// servingWeb0 is web-0 ready in the slice "web-abc" with no finalizer.
func servingWeb0() *stream {
	return newStream().
		pod(Added, pod("web-0")).
		slice(Added, endpointSlice("web-abc", readyEndpoint("web-0")))
}

func TestCheckLossless(t *testing.T) {
	cases := []struct {
		name   string
		events []Event
		want   []wantViolation
	}{
		{
			name: "an in-place update that waits for the slice and the registry, then brings the pod back, passes",
			events: drainedWeb0().
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				pod(Modified, pod("web-0", withImage("web:v2"))).
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-0"))).
				pod(Modified, pod("web-0", withImage("web:v2"), withFinalizers(registryFinal))).
				events,
		},
		{
			name: "an image change while the slice lists the pod ready fails",
			events: servingWeb0().
				pod(Modified, pod("web-0", withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{
				`spec changed (container "app" image "web:v1" -> "web:v2"`,
				`EndpointSlice "web-abc"`, "ready=true serving=true",
			}}},
		},
		{
			name: "an image change that arrives in the same event as the pod turning NotReady fails while the slice still lists it",
			events: servingWeb0().
				pod(Modified, pod("web-0", withImage("web:v2"), withReady(false))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"spec changed", `EndpointSlice "web-abc"`}}},
		},
		{
			name: "a status change while the pod is ready in a slice is not an operation",
			events: servingWeb0().
				pod(Modified, pod("web-0", withReady(false))).
				events,
		},
		{
			name: "a deletion while the traffic.cafe.io/registry finalizer is on fails",
			events: newStream().
				pod(Added, pod("web-0", withFinalizers(registryFinal))).
				slice(Added, endpointSlice("web-abc", readyEndpoint("web-0"))).
				pod(Modified, pod("web-0", withReady(false), withFinalizers(registryFinal))).
				slice(Modified, endpointSlice("web-abc", drainedEndpoint("web-0"))).
				pod(Modified, pod("web-0", withReady(false), withFinalizers(registryFinal), withDeletionTimestamp())).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{
				"deletion started", `traffic finalizer "traffic.cafe.io/registry"`,
			}}},
		},
		{
			name: "a deletion after the finalizer is removed and the slice shows the pod not ready passes",
			events: drainedWeb0().
				pod(Modified, pod("web-0", withReady(false), withDeletionTimestamp())).
				pod(Deleted, pod("web-0", withReady(false), withDeletionTimestamp())).
				slice(Modified, endpointSlice("web-abc")).
				events,
		},
		{
			name: "a deletion without graceful deletion while the pod is ready fails",
			events: servingWeb0().
				pod(Deleted, pod("web-0")).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"deleted without graceful deletion", `EndpointSlice "web-abc"`}}},
		},
		{
			name: "an endpoint that is serving but not ready holds the pod",
			events: newStream().
				pod(Added, pod("web-0", withReady(false))).
				slice(Added, endpointSlice("web-abc", endpoint("web-0", boolPtr(false), boolPtr(true)))).
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"ready=false serving=true"}}},
		},
		{
			name: "an endpoint with unset conditions holds the pod, since the API reads nil as true",
			events: newStream().
				pod(Added, pod("web-0", withReady(false))).
				slice(Added, endpointSlice("web-abc", endpoint("web-0", nil, nil))).
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"ready=<unset> serving=<unset>"}}},
		},
		{
			name: "an endpoint not ready with serving unset holds the pod, since the API reads nil as true",
			events: newStream().
				pod(Added, pod("web-0", withReady(false))).
				slice(Added, endpointSlice("web-abc", endpoint("web-0", boolPtr(false), nil))).
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"ready=false serving=<unset>"}}},
		},
		{
			name: "an endpoint not serving with ready unset holds the pod, since the API reads nil as true",
			events: newStream().
				pod(Added, pod("web-0", withReady(false))).
				slice(Added, endpointSlice("web-abc", endpoint("web-0", nil, boolPtr(false)))).
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"ready=<unset> serving=false"}}},
		},
		{
			name: "a spec change after the pod's EndpointSlice is deleted passes",
			events: servingWeb0().
				slice(Deleted, endpointSlice("web-abc", readyEndpoint("web-0"))).
				pod(Modified, pod("web-0", withImage("web:v2"))).
				events,
		},
		{
			name: "an endpoint left by an earlier pod of the same name does not hold the new pod",
			events: newStream().
				pod(Added, pod("web-0", withUID("uid-new"))).
				slice(Added, endpointSlice("web-abc", readyEndpoint("web-0"))).
				pod(Modified, pod("web-0", withUID("uid-new"), withImage("web:v2"))).
				events,
		},
		{
			name: "an endpoint of another pod does not hold this one",
			events: servingWeb0().
				pod(Added, pod("web-1")).
				pod(Modified, pod("web-1", withImage("web:v2"))).
				events,
		},
		{
			name: "a finalizer outside traffic.cafe.io does not hold the pod",
			events: drainedWeb0().
				pod(Modified, pod("web-0", withReady(false), withFinalizers("example.com/protect"))).
				pod(Modified, pod("web-0", withReady(false), withFinalizers("example.com/protect"), withImage("web:v2"))).
				events,
		},
		{
			name: "removing the provider's finalizer in the same update as the spec change fails",
			events: newStream().
				pod(Added, pod("web-0", withReady(false), withFinalizers(registryFinal))).
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"spec changed", registryFinal}}},
		},
		{
			name: "a pod held by both a slice and a finalizer gets one violation naming both",
			events: newStream().
				pod(Added, pod("web-0", withFinalizers(registryFinal))).
				slice(Added, endpointSlice("web-abc", readyEndpoint("web-0"))).
				pod(Modified, pod("web-0", withFinalizers(registryFinal), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{`EndpointSlice "web-abc"`, registryFinal}}},
		},
		{
			name: "the scheduler binding a pod is not a spec change",
			events: newStream().
				pod(Added, pod("web-0", withReady(false), withNodeName(""), withFinalizers(registryFinal))).
				pod(Modified, pod("web-0", withReady(false), withFinalizers(registryFinal))).
				events,
		},
		{
			name: "moving a bound pod to another node is a spec change",
			events: newStream().
				pod(Added, pod("web-0", withReady(false), withFinalizers(registryFinal))).
				pod(Modified, pod("web-0", withReady(false), withFinalizers(registryFinal), withNodeName("node-b"))).
				events,
			want: []wantViolation{{pod: "web-0", contains: []string{"changed fields: spec.nodeName"}}},
		},
		{
			name: "events from a list are not judged",
			events: newStream().
				add(Event{Type: Added, Synthetic: true, Pod: pod("web-0")}).
				add(Event{Type: Added, Synthetic: true, EndpointSlice: endpointSlice("web-abc", readyEndpoint("web-0"))}).
				add(Event{Type: Modified, Synthetic: true, Pod: pod("web-0", withImage("web:v2"))}).
				events,
		},
		{
			name: "a gap in the stream fails the check even when the rest complies",
			events: drainedWeb0().
				gap().
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				events,
			want: []wantViolation{{pod: "", contains: []string{"gap", "the Pod watch expired"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			expectViolations(g, CheckLossless(tc.events), tc.want)
		})
	}
}

func TestCheckLosslessOrdersByResourceVersion(t *testing.T) {
	// The watches deliver independently: an event can arrive (higher Seq) after one
	// with a higher resource version. The check must follow the resource versions.
	drain := func(sliceRV, specRV uint64) []Event {
		s := servingWeb0().pod(Modified, pod("web-0", withReady(false)))
		events := s.events
		events = append(events,
			Event{Seq: 10, ResourceVersion: specRV, Type: Modified, Pod: pod("web-0", withReady(false), withImage("web:v2"))},
			Event{Seq: 11, ResourceVersion: sliceRV, Type: Modified, EndpointSlice: endpointSlice("web-abc", drainedEndpoint("web-0"))},
		)
		return events
	}
	cases := []struct {
		name          string
		sliceRV       uint64
		specRV        uint64
		wantViolation bool
	}{
		{name: "a drain written before the spec change but delivered after it passes", sliceRV: 200, specRV: 201},
		{name: "a drain written after the spec change fails even though it was delivered first", sliceRV: 201, specRV: 200, wantViolation: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := CheckLossless(drain(tc.sliceRV, tc.specRV))
			if tc.wantViolation {
				g.Expect(got).To(HaveLen(1))
				g.Expect(got[0].ResourceVersion).To(Equal(tc.specRV))
			} else {
				g.Expect(got).To(BeEmpty(), Report(got))
			}
		})
	}
}

func TestCheckLosslessDoesNotReorderTheCallersEvents(t *testing.T) {
	g := NewWithT(t)
	events := []Event{
		{Seq: 2, ResourceVersion: 9, Type: Added, Pod: pod("web-1")},
		{Seq: 1, ResourceVersion: 5, Type: Added, Pod: pod("web-0")},
	}
	CheckLossless(events)
	g.Expect(events[0].Seq).To(Equal(uint64(2)))
}
