package watchrec

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/labels"
)

// threeReady is web-0, web-1 and web-2 created and turning Ready one by one.
func threeReady() *stream {
	s := newStream()
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		s.pod(Added, pod(name, withReady(false)))
	}
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		s.pod(Modified, pod(name))
	}
	return s
}

func TestCheckWaterLevel(t *testing.T) {
	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	cases := []struct {
		name     string
		events   []Event
		selector labels.Selector
		minReady int
		want     []wantViolation
	}{
		{
			name:     "pods coming up one by one below the level is warm-up, not a violation",
			events:   threeReady().events,
			selector: web,
			minReady: 3,
		},
		{
			name: "updating one pod at a time while one more than the level is ready passes",
			events: threeReady().
				pod(Modified, pod("web-0", withReady(false))).
				pod(Modified, pod("web-0", withReady(false), withImage("web:v2"))).
				pod(Modified, pod("web-0", withImage("web:v2"))).
				pod(Modified, pod("web-1", withReady(false))).
				pod(Modified, pod("web-1", withImage("web:v2"))).
				events,
			selector: web,
			minReady: 2,
		},
		{
			name: "a second pod turning NotReady before the first is back is a dip",
			events: threeReady().
				pod(Modified, pod("web-0", withReady(false))).
				pod(Modified, pod("web-1", withReady(false))).
				events,
			selector: web,
			minReady: 2,
			want:     []wantViolation{{pod: "web-1", contains: []string{"fell to 1, below the water level 2", `"web-1" lost Ready=True`}}},
		},
		{
			name: "a pod whose deletion began no longer counts, even if still Ready",
			events: threeReady().
				pod(Modified, pod("web-2", withDeletionTimestamp())).
				events,
			selector: web,
			minReady: 3,
			want:     []wantViolation{{pod: "web-2", contains: []string{"fell to 2", `"web-2" began deletion`}}},
		},
		{
			name: "a surge that makes the new pod Ready before deleting the old one passes",
			events: threeReady().
				pod(Added, pod("web-3", withReady(false))).
				pod(Modified, pod("web-3")).
				pod(Modified, pod("web-0", withDeletionTimestamp())).
				pod(Deleted, pod("web-0", withDeletionTimestamp())).
				events,
			selector: web,
			minReady: 3,
		},
		{
			name: "each dip is reported once, and again after the level recovers",
			events: threeReady().
				pod(Modified, pod("web-0", withReady(false))).
				pod(Modified, pod("web-1", withReady(false))).
				pod(Modified, pod("web-0")).
				pod(Modified, pod("web-1")).
				pod(Deleted, pod("web-2")).
				events,
			selector: web,
			minReady: 3,
			want: []wantViolation{
				{pod: "web-0", contains: []string{"fell to 2"}},
				{pod: "web-2", contains: []string{"fell to 2", `"web-2" was deleted`}},
			},
		},
		{
			name: "pods the selector does not match are not counted",
			events: threeReady().
				pod(Added, pod("db-0", withLabels(map[string]string{"app": "db"}))).
				pod(Modified, pod("web-0", withReady(false))).
				events,
			selector: web,
			minReady: 3,
			want:     []wantViolation{{pod: "web-0", contains: []string{"fell to 2"}}},
		},
		{
			name: "a pod relabelled out of the selector leaves the count",
			events: threeReady().
				pod(Modified, pod("web-1", withLabels(map[string]string{"app": "quarantine"}))).
				events,
			selector: web,
			minReady: 3,
			want:     []wantViolation{{pod: "web-1", contains: []string{`"web-1" stopped matching the selector`}}},
		},
		{
			name: "a gap in the stream fails the check",
			events: threeReady().
				gap().
				events,
			selector: web,
			minReady: 1,
			want:     []wantViolation{{pod: "", contains: []string{"gap"}}},
		},
		{
			name: "a level of zero cannot be broken",
			events: threeReady().
				pod(Deleted, pod("web-0")).
				pod(Deleted, pod("web-1")).
				pod(Deleted, pod("web-2")).
				events,
			selector: web,
			minReady: 0,
		},
		{
			name: "a nil selector counts every pod",
			events: threeReady().
				pod(Modified, pod("web-0", withReady(false))).
				events,
			minReady: 3,
			want:     []wantViolation{{pod: "web-0", contains: []string{"fell to 2"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			expectViolations(g, CheckWaterLevel(tc.events, tc.selector, tc.minReady), tc.want)
		})
	}
}

func TestReadyPods(t *testing.T) {
	g := NewWithT(t)
	events := threeReady().
		pod(Modified, pod("web-1", withReady(false))).
		pod(Modified, pod("web-2", withDeletionTimestamp())).
		pod(Added, pod("db-0", withLabels(map[string]string{"app": "db"}))).
		events
	g.Expect(ReadyPods(events, labels.SelectorFromSet(labels.Set{"app": "web"}))).To(Equal([]string{"web-0"}))
	g.Expect(ReadyPods(events, nil)).To(Equal([]string{"db-0", "web-0"}))
}
