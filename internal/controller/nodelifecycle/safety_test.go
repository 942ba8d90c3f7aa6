package nodelifecycle

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// turned is a node of zone that turned v d ago; fine a Healthy one.
func turned(zone string, v cafev1alpha1.NodeVerdict, d time.Duration) zoneMember {
	return zoneMember{Zone: zone, Verdict: v, UnhealthySince: ago(d)}
}

func fine(zone string) zoneMember { return zoneMember{Zone: zone, Verdict: healthy} }

func TestZoneGuardHoldsAZoneWhileTooManyOfItsNodesAreBad(t *testing.T) {
	guard := cafev1alpha1.ZoneGuardSpec{MaxUnhealthyPercent: 50, WindowSeconds: 120}
	tests := []struct {
		name    string
		members []zoneMember
		guard   cafev1alpha1.ZoneGuardSpec
		guarded []string
		recent  map[string]int32
	}{
		{name: "one failed node of two (50%) is not above 50%",
			members: []zoneMember{turned("a", failed, time.Second), fine("a")}, guard: guard, recent: map[string]int32{"a": 1}},
		{name: "two of two trip it",
			members: []zoneMember{turned("a", failed, 10*time.Second), turned("a", suspect, time.Second)}, guard: guard, guarded: []string{"a"}, recent: map[string]int32{"a": 2}},
		{name: "two of three, per zone",
			members: []zoneMember{turned("a", failed, 0), turned("a", suspect, 0), fine("a"), turned("b", failed, 0), fine("b"), fine("b")}, guard: guard, guarded: []string{"a"}, recent: map[string]int32{"a": 2, "b": 1}},
		{name: "nodes that turned bad one by one, further apart than the window, count too (review finding 7)",
			members: []zoneMember{turned("a", failed, time.Hour), turned("a", failed, 121*time.Second), turned("a", failed, 0), fine("a")}, guard: guard, guarded: []string{"a"}, recent: map[string]int32{"a": 1}},
		{name: "half a zone bad long ago and half now: every node counts",
			members: []zoneMember{turned("a", suspect, time.Hour), turned("a", suspect, time.Hour), turned("a", suspect, 0), turned("a", suspect, 0)}, guard: guard, guarded: []string{"a"}, recent: map[string]int32{"a": 2}},
		{name: "2 of 4 is not above 50%",
			members: []zoneMember{turned("a", failed, time.Hour), turned("a", suspect, 0), fine("a"), fine("a")}, guard: guard, recent: map[string]int32{"a": 1}},
		{name: "0% guards a zone at its first unhealthy node",
			members: []zoneMember{turned("a", suspect, 0), fine("a"), fine("b")}, guard: cafev1alpha1.ZoneGuardSpec{MaxUnhealthyPercent: 0, WindowSeconds: 120}, guarded: []string{"a"}, recent: map[string]int32{"a": 1, "b": 0}},
		{name: "100% never guards",
			members: []zoneMember{turned("a", failed, 0)}, guard: cafev1alpha1.ZoneGuardSpec{MaxUnhealthyPercent: 100, WindowSeconds: 120}, recent: map[string]int32{"a": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var got []string
			for _, z := range zoneHealth(tt.members, tt.guard, now) {
				if z.Guarded {
					got = append(got, z.Name)
				}
				g.Expect(z.RecentlyUnhealthy).To(Equal(tt.recent[z.Name]), "zone %s", z.Name)
			}
			g.Expect(got).To(Equal(tt.guarded))
		})
	}
}

func grant(at time.Time, n int32) cafev1alpha1.MigrationGrant {
	return cafev1alpha1.MigrationGrant{Time: metav1.NewMicroTime(at), Pods: n}
}

func TestRateWindowGrantsAtMostTheLimitInAnyWindow(t *testing.T) {
	g := NewWithT(t)
	w := rateWindow{window: time.Minute}
	n, _ := w.available(now, 3)
	g.Expect(n).To(Equal(3))
	w.grants = w.take(now, 2)
	w.grants = w.take(now.Add(10*time.Second), 1)
	g.Expect(w.grants).To(Equal([]cafev1alpha1.MigrationGrant{grant(now, 2), grant(now.Add(10*time.Second), 1)}))
	n, wait := w.available(now.Add(20*time.Second), 3)
	g.Expect(n).To(Equal(0))
	g.Expect(wait).To(Equal(40*time.Second), "the first grant (2 pods) leaves the window first")
	n, _ = w.available(now.Add(60*time.Second), 3)
	g.Expect(n).To(Equal(2), "the two started at now have left the window")
	g.Expect(w.take(now.Add(60*time.Second), 0)).To(Equal([]cafev1alpha1.MigrationGrant{grant(now.Add(10*time.Second), 1)}), "expired grants are dropped")

	// Grants read back from the API in any order, beyond the limit (a
	// lowered limit): the wait is until enough of them expire.
	w = rateWindow{window: time.Minute, grants: []cafev1alpha1.MigrationGrant{grant(now.Add(-10*time.Second), 5), grant(now.Add(-50*time.Second), 5)}}
	n, wait = w.available(now, 4)
	g.Expect(n).To(Equal(0))
	g.Expect(wait).To(Equal(50*time.Second), "10 used, limit 4: both grants must leave")
	n, wait = w.available(now, 6)
	g.Expect(n).To(Equal(0))
	g.Expect(wait).To(Equal(10*time.Second), "the older grant leaving frees 5 of 10, below 6")
}

func pods(names ...string) []client.Object {
	var out []client.Object
	for _, n := range names {
		out = append(out, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	return out
}

func judged(name, zone string, v cafev1alpha1.NodeVerdict, since time.Duration, movable ...string) nodeState {
	return nodeState{Name: name, Zone: zone, Judgement: nodeJudgement{Verdict: v}, VerdictSince: ago(since), Movable: pods(movable...)}
}

func TestPlanActions(t *testing.T) {
	observe := defaults()
	observe.Mode = cafev1alpha1.NodeLifecycleObserve
	trustReports := defaults()
	trustReports.Migration.FreshLease = cafev1alpha1.FreshLeaseWithExternalReport
	withReport := judged("n1", "a", failed, time.Minute, "p1")
	withReport.LeaseFresh = true
	withReport.Judgement.Bad = []Signal{bad(report, time.Minute), bad(probe, time.Minute)}
	fresh := withReport
	fresh.Judgement.Bad = []Signal{bad(conds, time.Minute), bad(probe, time.Minute)}

	type want struct {
		noSchedule, noExecute bool
		migrate               []string
		held                  bool
		rateLimited           bool
		taintRateLimited      bool
	}
	tests := []struct {
		name   string
		policy *cafev1alpha1.NodeLifecyclePolicySpec
		nodes  []nodeState
		zones  []cafev1alpha1.ZoneHealth
		tokens int
		// taints is the taint budget; 0 means plenty.
		taints int
		want   []want
	}{
		{name: "a healthy node carries no CAFE taint", nodes: []nodeState{{Name: "n1", Judgement: nodeJudgement{Verdict: healthy}, NoSchedule: true, NoExecute: true}}, tokens: 10, want: []want{{}}},
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
		{
			name:   "new taints are rate-limited, oldest verdict first; taints already on stay",
			nodes:  []nodeState{judged("n3", "c", suspect, time.Second), judged("n1", "a", suspect, time.Minute), func() nodeState { n := judged("n2", "b", suspect, 30*time.Second); n.NoSchedule = true; return n }()},
			tokens: 10, taints: 1,
			want: []want{{held: true, taintRateLimited: true}, {noSchedule: true}, {noSchedule: true}},
		},
		{
			name:   "NoExecute needs a taint token too",
			nodes:  []nodeState{func() nodeState { n := judged("n1", "a", failed, time.Hour); n.NoSchedule = true; return n }()},
			tokens: 10, taints: -1,
			want: []want{{noSchedule: true, held: true, taintRateLimited: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := tt.policy
			if p == nil {
				p = defaults()
			}
			taints := tt.taints
			switch taints {
			case 0:
				taints = 100
			case -1:
				taints = 0
			}
			out := planActions(tt.nodes, tt.zones, p, budget{Migrations: tt.tokens, Taints: taints}, now)
			g.Expect(out.Nodes).To(HaveLen(len(tt.want)))
			granted := 0
			for i, w := range tt.want {
				a := out.Nodes[i]
				g.Expect(a.Node).To(Equal(tt.nodes[i].Name))
				g.Expect(a.NoSchedule).To(Equal(w.noSchedule), "%s NoSchedule", a.Node)
				g.Expect(a.NoExecute).To(Equal(w.noExecute), "%s NoExecute", a.Node)
				var migrate []string
				for _, p := range a.Migrate {
					migrate = append(migrate, p.GetName())
				}
				g.Expect(migrate).To(Equal(w.migrate), "%s migrate", a.Node)
				g.Expect(a.Held != "").To(Equal(w.held), "%s held: %q", a.Node, a.Held)
				g.Expect(a.RateLimited).To(Equal(w.rateLimited), "%s rate limited", a.Node)
				g.Expect(a.TaintRateLimited).To(Equal(w.taintRateLimited), "%s taint rate limited", a.Node)
				granted += len(migrate)
			}
			g.Expect(out.Granted).To(Equal(granted))
		})
	}
}

func TestWithdrawGrantsHoldsEveryMigrationAndNewTaintAsTheRateLimitsWould(t *testing.T) {
	g := NewWithT(t)
	cordoned := judged("n3", "c", suspect, time.Minute)
	cordoned.NoSchedule = true
	plan := planActions([]nodeState{judged("n1", "a", failed, time.Minute, "p1", "p2"), judged("n2", "b", suspect, time.Minute), cordoned}, nil, defaults(), budget{Migrations: 10, Taints: 10}, now)
	g.Expect(plan.Nodes[0].Migrate).To(HaveLen(2))
	g.Expect(plan.TaintsGranted).To(Equal(2))
	plan.withdrawGrants()
	g.Expect(plan.Nodes[0].Migrate).To(BeEmpty())
	g.Expect(plan.Nodes[0].RateLimited).To(BeTrue(), "the node with migrations waits for the next grant")
	g.Expect(plan.Nodes[0].NoSchedule).To(BeFalse(), "its new taint waits for the next grant too")
	g.Expect(plan.Nodes[1].TaintRateLimited).To(BeTrue())
	g.Expect(plan.Nodes[2].NoSchedule).To(BeTrue(), "a taint already on stays")
	g.Expect(plan.Nodes[2].TaintRateLimited).To(BeFalse())
}
