package podset

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/lossless/losslesstest"
)

// np builds a serving pod of a native pod set.
func np(name, owner string, updated bool) nativePod {
	return nativePod{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, Owner: owner, Ordinal: -1, Updated: updated, Available: true}
}

func (p nativePod) draining(reason string, drained bool) nativePod {
	p.Available, p.DrainReason, p.Drained = false, reason, drained
	return p
}

func (p nativePod) marked() nativePod {
	p = p.draining(lossless.ReasonDrainForDelete, true)
	p.Marked = true
	return p
}

func (p nativePod) unavailable() nativePod { p.Available = false; return p }

func (p nativePod) requested() nativePod { p.DeleteRequested = true; return p }

// withPod replaces pod i of pods.
func withPod(pods []nativePod, i int, p nativePod) []nativePod {
	out := append([]nativePod{}, pods...)
	out[i] = p
	return out
}

func (p nativePod) ordinal(n int) nativePod { p.Ordinal = n; return p }

var (
	names     = losslesstest.PodNames
	gateNames = losslesstest.GateNames
)

// oldPods are n serving pods of ReplicaSet "old".
func oldPods(n int) []nativePod {
	var out []nativePod
	for i := range n {
		out = append(out, np(fmt.Sprintf("old-%d", i), "old", false))
	}
	return out
}

func TestPlanReplace(t *testing.T) {
	del := lossless.ReasonDrainForDelete
	tests := []struct {
		name      string
		in        replaceInput
		closeGate []string
		reopen    []string
		mark      []string
		deleted   []string
		newRS     int32
		oldRS     int32
	}{
		{
			name:      "a release starts by draining one old pod within maxUnavailable, without surge the new set waits",
			in:        replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: oldPods(3)},
			closeGate: []string{"old-0:" + del}, newRS: 0, oldRS: 3,
		},
		{
			name: "a drained pod is marked and its ReplicaSet shrinks by it, making room for a new pod",
			in:   replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: append([]nativePod{oldPods(1)[0].draining(del, true)}, oldPods(3)[1:]...)},
			mark: []string{"old-0"}, newRS: 1, oldRS: 2,
		},
		{
			name:  "a pod still draining holds the budget",
			in:    replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: append([]nativePod{oldPods(1)[0].draining(del, false)}, oldPods(3)[1:]...)},
			newRS: 0, oldRS: 3,
		},
		{
			name:  "a marked pod is not counted again: the ReplicaSet stays shrunk",
			in:    replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 1, NewSet: "new", NewCurrent: 1, OldSets: map[string]int32{"old": 2}, Pods: append([]nativePod{oldPods(1)[0].marked()}, oldPods(3)[1:]...)},
			newRS: 1, oldRS: 2,
		},
		{
			name:      "surge lets the new set grow first, and new available pods pay for further drains",
			in:        replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 0, MaxSurge: 1, NewSet: "new", NewCurrent: 1, OldSets: map[string]int32{"old": 3}, Pods: append(oldPods(3), np("new-0", "new", true))},
			closeGate: []string{"old-0:" + del}, newRS: 1, oldRS: 3,
		},
		{
			name:  "maxUnavailable 0 without surge closes no available gate",
			in:    replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 0, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: oldPods(3)},
			newRS: 0, oldRS: 3,
		},
		{
			name:      "an unavailable old pod is drained first, and counts against maxUnavailable",
			in:        replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 2, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: []nativePod{np("old-0", "old", false), np("old-1", "old", false), np("old-2", "old", false).unavailable()}},
			closeGate: []string{"old-2:" + del, "old-0:" + del}, newRS: 0, oldRS: 3,
		},
		{
			name:  "the partition holds: old pods beyond the group's target are not touched",
			in:    replaceInput{Replicas: 3, Target: 1, MaxUnavailable: 3, NewSet: "new", NewCurrent: 1, OldSets: map[string]int32{"old": 2}, Pods: append(oldPods(3)[1:], np("new-0", "new", true))},
			newRS: 1, oldRS: 2,
		},
		{
			name:   "a rollback reopens drains the plan no longer needs",
			in:     replaceInput{Replicas: 3, Target: 0, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: append([]nativePod{oldPods(1)[0].draining(del, false)}, oldPods(3)[1:]...)},
			reopen: []string{"old-0"}, newRS: 0, oldRS: 3,
		},
		{
			name: "paused starts no drain but finishes a drained pod",
			in:   replaceInput{Replicas: 3, Target: 3, MaxUnavailable: 2, Paused: true, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: append([]nativePod{oldPods(1)[0].draining(del, true)}, oldPods(3)[1:]...)},
			mark: []string{"old-0"}, newRS: 1, oldRS: 2,
		},
		{
			name:      "a scale-in drains the surplus of the new revision, not limited to one at a time",
			in:        replaceInput{Replicas: 1, Target: 1, MaxUnavailable: 1, NewSet: "new", NewCurrent: 3, OldSets: map[string]int32{}, Pods: []nativePod{np("new-0", "new", true), np("new-1", "new", true), np("new-2", "new", true)}},
			closeGate: []string{"new-0:" + del, "new-1:" + del}, newRS: 3,
		},
		{
			name:      "a requested deletion drains the pod within budget; no other pod is drained in its place",
			in:        replaceInput{Replicas: 3, Target: 0, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: withPod(oldPods(3), 1, oldPods(3)[1].requested())},
			closeGate: []string{"old-1:" + del}, newRS: 0, oldRS: 3,
		},
		{
			name:    "a drained requested pod is deleted, never reopened, and its ReplicaSet keeps its replicas to replace it",
			in:      replaceInput{Replicas: 3, Target: 0, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: withPod(oldPods(3), 1, oldPods(3)[1].requested().draining(del, true))},
			deleted: []string{"old-1"}, newRS: 0, oldRS: 3,
		},
		{
			name:  "a requested deletion of a serving pod waits while the unit has no budget",
			in:    replaceInput{Replicas: 3, Target: 0, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: withPod(withPod(oldPods(3), 0, oldPods(3)[0].unavailable()), 1, oldPods(3)[1].requested())},
			newRS: 0, oldRS: 3,
		},
		{
			name:      "a requested pod that serves nobody is drained without budget",
			in:        replaceInput{Replicas: 3, Target: 0, MaxUnavailable: 1, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: withPod(withPod(oldPods(3), 0, oldPods(3)[0].unavailable()), 1, oldPods(3)[1].requested().unavailable())},
			closeGate: []string{"old-1:" + del}, newRS: 0, oldRS: 3,
		},
		{
			name:  "paused: a requested deletion starts no drain",
			in:    replaceInput{Replicas: 3, Target: 0, MaxUnavailable: 1, Paused: true, NewSet: "new", OldSets: map[string]int32{"old": 3}, Pods: withPod(oldPods(3), 1, oldPods(3)[1].requested())},
			newRS: 0, oldRS: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := planReplace(tt.in)
			g.Expect(names(got.Delete)).To(Equal(orEmpty(tt.deleted)), "pods deleted")
			g.Expect(gateNames(got.CloseGate)).To(Equal(orEmpty(tt.closeGate)), "gates closed")
			g.Expect(names(got.ReopenGate)).To(Equal(orEmpty(tt.reopen)), "gates reopened")
			g.Expect(names(got.Mark)).To(Equal(orEmpty(tt.mark)), "pods marked")
			g.Expect(got.NewReplicas).To(Equal(tt.newRS), "new ReplicaSet replicas")
			if _, ok := tt.in.OldSets["old"]; ok {
				g.Expect(got.OldReplicas["old"]).To(Equal(tt.oldRS), "old ReplicaSet replicas")
			}
		})
	}
}

func stsPods(n int, updated bool) []nativePod {
	var out []nativePod
	for i := range n {
		out = append(out, np(fmt.Sprintf("s-%d", i), "s", updated).ordinal(i))
	}
	return out
}

func TestPlanOnDelete(t *testing.T) {
	upd, del := lossless.ReasonDrainForUpdate, lossless.ReasonDrainForDelete
	tests := []struct {
		name      string
		in        onDeleteInput
		closeGate []string
		reopen    []string
		deleted   []string
		replicas  int32
	}{
		{
			name:      "an update drains the highest ordinal first",
			in:        onDeleteInput{Replicas: 3, Target: 3, MaxUnavailable: 1, Current: 3, Pods: stsPods(3, false)},
			closeGate: []string{"s-2:" + upd}, replicas: 3,
		},
		{
			name:    "a drained pod is deleted, to be recreated at the update revision",
			in:      onDeleteInput{Replicas: 3, Target: 3, MaxUnavailable: 1, Current: 3, Pods: append(stsPods(2, false), stsPods(3, false)[2].draining(upd, true))},
			deleted: []string{"s-2"}, replicas: 3,
		},
		{
			name:     "a pod being recreated counts towards the target and holds the budget",
			in:       onDeleteInput{Replicas: 3, Target: 1, MaxUnavailable: 1, Current: 3, Pods: append(stsPods(2, false), func() nativePod { p := stsPods(3, false)[2]; p.Terminating = true; return p }())},
			replicas: 3,
		},
		{
			name:     "the partition holds once the target is reached",
			in:       onDeleteInput{Replicas: 3, Target: 1, MaxUnavailable: 3, Current: 3, Pods: append(stsPods(2, false), np("s-2", "s", true).ordinal(2))},
			replicas: 3,
		},
		{
			name:      "scale-in drains the ordinals that go, and keeps the replicas until they are drained",
			in:        onDeleteInput{Replicas: 1, Target: 1, MaxUnavailable: 1, Current: 3, Pods: stsPods(3, true)},
			closeGate: []string{"s-1:" + del, "s-2:" + del}, replicas: 3,
		},
		{
			name:     "scale-in lowers the replicas once every pod that goes is drained",
			in:       onDeleteInput{Replicas: 1, Target: 1, MaxUnavailable: 1, Current: 3, Pods: []nativePod{stsPods(1, true)[0], np("s-1", "s", true).ordinal(1).draining(del, true), np("s-2", "s", true).ordinal(2).draining(del, true)}},
			replicas: 1,
		},
		{
			name:     "scale-out raises the replicas at once",
			in:       onDeleteInput{Replicas: 5, Target: 5, MaxUnavailable: 1, Current: 3, Pods: stsPods(3, true)},
			replicas: 5,
		},
		{
			name:   "a rollback reopens a drain for an update the pod no longer needs",
			in:     onDeleteInput{Replicas: 3, Target: 3, MaxUnavailable: 1, Current: 3, Pods: append(stsPods(2, true), np("s-2", "s", true).ordinal(2).draining(upd, false))},
			reopen: []string{"s-2"}, replicas: 3,
		},
		{
			name:     "paused starts no drain",
			in:       onDeleteInput{Replicas: 3, Target: 3, MaxUnavailable: 1, Paused: true, Current: 3, Pods: stsPods(3, false)},
			replicas: 3,
		},
		{
			name:      "a requested deletion drains the pod within budget",
			in:        onDeleteInput{Replicas: 3, Target: 3, MaxUnavailable: 1, Current: 3, Pods: withPod(stsPods(3, true), 1, stsPods(3, true)[1].requested())},
			closeGate: []string{"s-1:" + del}, replicas: 3,
		},
		{
			name:    "a drained requested pod is deleted (the StatefulSet recreates its ordinal), never reopened",
			in:      onDeleteInput{Replicas: 3, Target: 3, MaxUnavailable: 1, Current: 3, Pods: withPod(stsPods(3, true), 1, stsPods(3, true)[1].requested().draining(del, true))},
			deleted: []string{"s-1"}, replicas: 3,
		},
		{
			name:      "during an update a requested old pod counts as updating: no other pod is drained for it",
			in:        onDeleteInput{Replicas: 3, Target: 1, MaxUnavailable: 2, Current: 3, Pods: withPod(stsPods(3, false), 0, stsPods(3, false)[0].requested())},
			closeGate: []string{"s-0:" + del}, replicas: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := planOnDelete(tt.in)
			g.Expect(gateNames(got.CloseGate)).To(Equal(orEmpty(tt.closeGate)), "gates closed")
			g.Expect(names(got.ReopenGate)).To(Equal(orEmpty(tt.reopen)), "gates reopened")
			g.Expect(names(got.Delete)).To(Equal(orEmpty(tt.deleted)), "pods deleted")
			g.Expect(got.Replicas).To(Equal(tt.replicas), "StatefulSet replicas")
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestOrdinalOf(t *testing.T) {
	g := NewWithT(t)
	g.Expect(ordinalOf("web-zone-a", "web-zone-a-12")).To(Equal(12))
	g.Expect(ordinalOf("web-zone-a", "web-zone-a-x")).To(Equal(-1))
	g.Expect(ordinalOf("web-zone-a", "web-zone-a-01")).To(Equal(-1))
	g.Expect(ordinalOf("web", "web")).To(Equal(-1))
}

// A unit's report names the first held drain of its pods and wakes the
// release when the youngest drain still waiting would count as held.
func TestNativeReportHeldDrain(t *testing.T) {
	g := NewWithT(t)
	a := np("a", "rs", false).draining(lossless.ReasonDrainForUpdate, false)
	a.HeldDrainIn = 3 * time.Second
	b := np("b", "rs", false).draining(lossless.ReasonDrainForUpdate, false)
	b.HeldDrain = "pod b has been draining since … and is still held by: traffic provider finalizer traffic.cafe.io/gateway"
	c := np("c", "rs", false).draining(lossless.ReasonDrainForUpdate, false)
	c.HeldDrainIn = time.Second
	v := nativeReport([]nativePod{a, b, c, np("d", "rs", false)})
	g.Expect(v.HeldDrain).To(Equal(b.HeldDrain))
	g.Expect(v.HeldDrainIn).To(Equal(time.Second))

	v = nativeReport([]nativePod{np("d", "rs", false)})
	g.Expect(v.HeldDrain).To(BeEmpty())
	g.Expect(v.HeldDrainIn).To(BeZero())
}
