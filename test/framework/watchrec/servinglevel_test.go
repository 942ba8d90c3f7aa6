package watchrec

import (
	"testing"

	. "github.com/onsi/gomega"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// threeServing is web-0, web-1 and web-2 Ready, then listed ready by the slice
// web-abc one by one.
func threeServing() *stream {
	s := newStream()
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		s.pod(Added, pod(name))
	}
	var eps []discoveryv1.Endpoint
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		eps = append(eps, readyEndpoint(name))
		s.slice(Modified, endpointSlice("web-abc", eps...))
	}
	return s
}

func TestCheckServingLevel(t *testing.T) {
	cases := []struct {
		name       string
		events     []Event
		minServing int
		want       []wantViolation
	}{
		{
			name:       "pods listed one by one below the level is warm-up, not a violation",
			events:     threeServing().events,
			minServing: 3,
		},
		{
			name: "a releaser taking one pod out of the slice at a time, one more than the level listed, passes",
			events: threeServing().
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-1"), readyEndpoint("web-2"))).
				pod(Modified, pod("web-0", withImage("web:v2"))).
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-0"), readyEndpoint("web-1"), readyEndpoint("web-2"))).
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-0"), readyEndpoint("web-2"))).
				events,
			minServing: 2,
		},
		{
			name: "a slice write dropping two pods at once while the pods stay Ready is a dip (the water level of Ready pods sees none)",
			events: threeServing().
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-2"))).
				events,
			minServing: 2,
			want:       []wantViolation{{pod: "web-0", contains: []string{"fell to 1, below the serving level 2", `EndpointSlice "web-abc" stopped listing "web-0" ready`}}},
		},
		{
			name: "an endpoint listed not ready does not count",
			events: threeServing().
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-0"), drainedEndpoint("web-1"), drainedEndpoint("web-2"))).
				events,
			minServing: 2,
			want:       []wantViolation{{pod: "web-1", contains: []string{"fell to 1"}}},
		},
		{
			name: "a pod whose deletion began no longer counts, even while listed",
			events: threeServing().
				pod(Modified, pod("web-1", withDeletionTimestamp())).
				events,
			minServing: 3,
			want:       []wantViolation{{pod: "web-1", contains: []string{"fell to 2, below the serving level 3", `"web-1" began deletion`}}},
		},
		{
			name: "a pod listed by two slices counts once, and still counts when one of them drops it",
			events: threeServing().
				slice(Added, endpointSlice("web-def", readyEndpoint("web-0"))).
				slice(Modified, endpointSlice("web-abc", readyEndpoint("web-1"), readyEndpoint("web-2"))).
				events,
			minServing: 3,
		},
		{
			name: "a new pod of the same name does not count for the old one's endpoint",
			events: threeServing().
				pod(Deleted, pod("web-0")).
				pod(Added, pod("web-0", withUID("uid-web-0-new"))).
				events,
			minServing: 3,
			want:       []wantViolation{{pod: "web-0", contains: []string{"fell to 2", `"web-0" was deleted`}}},
		},
		{
			name: "a deleted slice stops listing its pods",
			events: threeServing().
				slice(Deleted, endpointSlice("web-abc")).
				events,
			minServing: 1,
			want:       []wantViolation{{pod: "web-0", contains: []string{"fell to 0, below the serving level 1"}}},
		},
		{
			name:       "a gap is a violation: the lost events cannot be checked",
			events:     threeServing().gap().events,
			minServing: 1,
			want:       []wantViolation{{contains: []string{"Pod watch expired"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			expectViolations(g, CheckServingLevel(tc.events, tc.minServing), tc.want)
		})
	}
}

// TestCheckServingLevelSeesWhatTheWaterLevelDoesNot pins down why both checks
// exist: pods taken out of the slices while still Ready.
func TestCheckServingLevelSeesWhatTheWaterLevelDoesNot(t *testing.T) {
	g := NewWithT(t)
	events := threeServing().slice(Modified, endpointSlice("web-abc")).events
	g.Expect(CheckWaterLevel(events, labels.Everything(), 3)).To(BeEmpty())
	g.Expect(CheckServingLevel(events, 3)).To(HaveLen(1))
}
