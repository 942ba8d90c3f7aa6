package nodelifecycle

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestZoneGuardTripsAboveTheShare(t *testing.T) {
	tests := []struct {
		name    string
		members []zoneMember
		percent int32
		guarded []string
	}{
		{"one failed node of two (50%) is not above 50%", []zoneMember{{"a", failed}, {"a", healthy}}, 50, nil},
		{"two of two is", []zoneMember{{"a", failed}, {"a", suspect}}, 50, []string{"a"}},
		{"two of three is, per zone", []zoneMember{{"a", failed}, {"a", suspect}, {"a", healthy}, {"b", failed}, {"b", healthy}, {"b", healthy}}, 50, []string{"a"}},
		{"0% guards a zone at its first unhealthy node", []zoneMember{{"a", suspect}, {"a", healthy}, {"b", healthy}}, 0, []string{"a"}},
		{"100% never guards", []zoneMember{{"a", failed}}, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var got []string
			for _, z := range ZoneHealth(tt.members, tt.percent) {
				if z.Guarded {
					got = append(got, z.Name)
				}
			}
			g.Expect(got).To(Equal(tt.guarded))
		})
	}
}

func TestRateWindowGrantsAtMostTheLimitInAnyWindow(t *testing.T) {
	g := NewWithT(t)
	w := &rateWindow{window: time.Minute}
	n, _ := w.available(now, 3)
	g.Expect(n).To(Equal(3))
	w.take(now, 2)
	w.take(now.Add(10*time.Second), 1)
	n, wait := w.available(now.Add(20*time.Second), 3)
	g.Expect(n).To(Equal(0))
	g.Expect(wait).To(Equal(40 * time.Second))
	n, _ = w.available(now.Add(60*time.Second), 3)
	g.Expect(n).To(Equal(2), "the two started at now have left the window")
}

func pods(names ...string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, n := range names {
		out = append(out, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	return out
}

func judged(name, zone string, v cafev1alpha1.NodeVerdict, since time.Duration, movable ...string) nodeState {
	return nodeState{Name: name, Zone: zone, Decision: Decision{Verdict: v}, VerdictSince: ago(since), Movable: pods(movable...)}
}

func TestPlanActions(t *testing.T) {
	observe := defaults()
	observe.Mode = cafev1alpha1.NodeLifecycleObserve
	trustReports := defaults()
	trustReports.Migration.FreshLease = cafev1alpha1.FreshLeaseWithExternalReport
	withReport := judged("n1", "a", failed, time.Minute, "p1")
	withReport.LeaseFresh = true
	withReport.Decision.Bad = []Signal{bad(report, time.Minute), bad(probe, time.Minute)}
	fresh := withReport
	fresh.Decision.Bad = []Signal{bad(conds, time.Minute), bad(probe, time.Minute)}

	type want struct {
		noSchedule, noExecute bool
		migrate               []string
		held                  bool
		rateLimited           bool
	}
	tests := []struct {
		name   string
		policy *cafev1alpha1.NodeLifecyclePolicySpec
		nodes  []nodeState
		zones  []cafev1alpha1.ZoneHealth
		tokens int
		want   []want
	}{
		{name: "a healthy node carries no CAFE taint", nodes: []nodeState{{Name: "n1", Decision: Decision{Verdict: healthy}, NoSchedule: true, NoExecute: true}}, tokens: 10, want: []want{{}}},
		{name: "a suspect node is cordoned only", nodes: []nodeState{judged("n1", "a", suspect, time.Minute, "p1")}, tokens: 10, want: []want{{noSchedule: true}}},
		{name: "a failed node's InPlaceSet pods migrate", nodes: []nodeState{judged("n1", "a", failed, time.Second, "p1", "p2")}, tokens: 10, want: []want{{noSchedule: true, migrate: []string{"p1", "p2"}}}},
		{
			name:   "the rate limit is global, oldest verdict first",
			nodes:  []nodeState{judged("n2", "b", failed, time.Second, "q1", "q2"), judged("n1", "a", failed, time.Minute, "p1", "p2")},
			tokens: 3,
			want:   []want{{noSchedule: true, migrate: []string{"q1"}, rateLimited: true}, {noSchedule: true, migrate: []string{"p1", "p2"}}},
		},
		{name: "a failed node with nothing left to migrate gets NoExecute after otherPodsAfterSeconds", nodes: []nodeState{judged("n1", "a", failed, 31*time.Second)}, tokens: 10, want: []want{{noSchedule: true, noExecute: true}}},
		{name: "not before", nodes: []nodeState{judged("n1", "a", failed, 5*time.Second)}, tokens: 10, want: []want{{noSchedule: true}}},
		{name: "not while pods are still migrating", nodes: []nodeState{func() nodeState {
			n := judged("n1", "a", failed, time.Hour)
			n.Migrating = pods("p1")
			return n
		}()}, tokens: 10, want: []want{{noSchedule: true}}},
		{
			name:   "a guarded zone gets no new taint and no migration; taints already there stay",
			nodes:  []nodeState{judged("n1", "a", failed, time.Minute, "p1"), func() nodeState { n := judged("n2", "a", suspect, time.Minute); n.NoSchedule = true; return n }()},
			zones:  []cafev1alpha1.ZoneHealth{{Name: "a", Nodes: 2, Unhealthy: 2, Guarded: true}},
			tokens: 10,
			want:   []want{{held: true}, {noSchedule: true, held: true}},
		},
		{name: "a fresh Lease holds the migration by default", nodes: []nodeState{fresh}, tokens: 10, want: []want{{noSchedule: true, held: true}}},
		{name: "a fresh Lease with an external report migrates when the policy trusts reports", policy: trustReports, nodes: []nodeState{withReport}, tokens: 10, want: []want{{noSchedule: true, migrate: []string{"p1"}}}},
		{name: "a fresh Lease without an external report is held even then", policy: trustReports, nodes: []nodeState{fresh}, tokens: 10, want: []want{{noSchedule: true, held: true}}},
		{name: "Observe mode neither taints nor migrates", policy: observe, nodes: []nodeState{judged("n1", "a", failed, time.Hour, "p1")}, tokens: 10, want: []want{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := tt.policy
			if p == nil {
				p = defaults()
			}
			out := planActions(tt.nodes, tt.zones, p, tt.tokens, now)
			g.Expect(out.Nodes).To(HaveLen(len(tt.want)))
			granted := 0
			for i, w := range tt.want {
				a := out.Nodes[i]
				g.Expect(a.Node).To(Equal(tt.nodes[i].Name))
				g.Expect(a.NoSchedule).To(Equal(w.noSchedule), "%s NoSchedule", a.Node)
				g.Expect(a.NoExecute).To(Equal(w.noExecute), "%s NoExecute", a.Node)
				var migrate []string
				for _, p := range a.Migrate {
					migrate = append(migrate, p.Name)
				}
				g.Expect(migrate).To(Equal(w.migrate), "%s migrate", a.Node)
				g.Expect(a.Held != "").To(Equal(w.held), "%s held: %q", a.Node, a.Held)
				g.Expect(a.RateLimited).To(Equal(w.rateLimited), "%s rate limited", a.Node)
				granted += len(migrate)
			}
			g.Expect(out.Granted).To(Equal(granted))
		})
	}
}
