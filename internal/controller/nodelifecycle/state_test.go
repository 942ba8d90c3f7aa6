package nodelifecycle_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/managermetrics"
)

// serialTest is framework.ControllerSuite.Setup without t.Parallel: the tests
// below change the cluster-wide policy or read process-wide metrics, so
// they run before the parallel tests start (Go runs every top-level test
// that is not parallel first, one at a time).
func serialTest(t *testing.T, d time.Duration) (context.Context, *WithT, string) {
	t.Helper()
	if suite.Client == nil {
		t.Skip("needs the API server (not started in -short mode)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	return ctx, g, framework.CreateNamespace(t, suite.Client)
}

func readPolicy(ctx context.Context, g *WithT) *cafev1alpha1.NodeLifecyclePolicy {
	p := &cafev1alpha1.NodeLifecyclePolicy{}
	g.Expect(suite.Client.Get(ctx, types.NamespacedName{Name: cafev1alpha1.NodeLifecyclePolicyName}, p)).To(Succeed())
	return p
}

// setMaxPodsPerMinute changes the policy's rate limit for one test.
func setMaxPodsPerMinute(t *testing.T, ctx context.Context, g *WithT, n int32) {
	t.Helper()
	setPolicyField(t, ctx, g, func(s *cafev1alpha1.NodeLifecyclePolicySpec) *int32 { return &s.Migration.MaxPodsPerMinute }, n)
}

// setPolicyField sets the field of the cluster's policy spec that field
// points at to v, and back to its value before when the test ends.
func setPolicyField[V any](t *testing.T, ctx context.Context, g *WithT, field func(*cafev1alpha1.NodeLifecyclePolicySpec) *V, v V) {
	t.Helper()
	set := func(v V) error {
		return framework.Update(context.Background(), suite.Client, &cafev1alpha1.NodeLifecyclePolicy{ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.NodeLifecyclePolicyName}}, func(p *cafev1alpha1.NodeLifecyclePolicy) {
			*field(&p.Spec) = v
		})
	}
	before := *field(&readPolicy(ctx, g).Spec)
	g.Expect(set(v)).To(Succeed())
	t.Cleanup(func() { _ = set(before) })
}

// migrationTime is the start time a pod's migration request carries.
func migrationTime(ctx context.Context, pod *corev1.Pod) (time.Time, bool) {
	p := &corev1.Pod{}
	if suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), p) != nil {
		return time.Time{}, false
	}
	fields := strings.Fields(p.Annotations[cafev1alpha1.MigrationRequestedAnnotation])
	if len(fields) < 2 {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, fields[1])
	return at, err == nil
}

// The rate limit's window lives in the policy's status, not in the
// controller's memory: grants written there by an earlier controller (one
// that crashed, say; this controller never saw them) hold a Failed node's
// migration until they leave the window, and the new grant is recorded
// there before the pod is asked to migrate.
func TestRateLimitWindowIsReadFromThePolicyStatus(t *testing.T) {
	ctx, g, ns := serialTest(t, 2*time.Minute)
	setMaxPodsPerMinute(t, ctx, g, 2)
	nodes := zone(t, ctx, g, "window", 3)
	pod := inPlaceSetPod(t, ctx, g, ns, "app-0", nodes[0].name)
	g.Eventually(func() string { return verdictOf(ctx, nodes[0].name) }).Should(Equal("Healthy"))

	// Two migrations granted 45 s ago by "another" controller: the window
	// (limit 2) is full for 15 s more.
	granted := time.Now().Add(-45 * time.Second)
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := readPolicy(ctx, g)
		p.Status.RecentMigrations = []cafev1alpha1.MigrationGrant{{Time: metav1.NewMicroTime(granted), Pods: 2}}
		return suite.Client.Status().Update(ctx, p)
	})).To(Succeed())
	full := granted.Add(time.Minute)

	nodes[0].alive <- false
	setReady(ctx, g, nodes[0].name, corev1.ConditionUnknown)
	g.Eventually(func() string { return verdictOf(ctx, nodes[0].name) }).Should(Equal("Failed"))
	g.Expect(time.Now()).To(BeTemporally("<", full.Add(-3*time.Second)), "the node was judged while the window was still full")
	g.Consistently(func() bool { return migrationRequested(ctx, pod) }, time.Until(full.Add(-time.Second)), 100*time.Millisecond).
		Should(BeFalse(), "no migration while the grants recorded in the status fill the window")

	g.Eventually(func() bool { return migrationRequested(ctx, pod) }).Should(BeTrue(), "the migration starts once they have left it")
	at, ok := migrationTime(ctx, pod)
	g.Expect(ok).To(BeTrue())
	// The annotation's time is whole seconds (truncated).
	g.Expect(at).To(BeTemporally(">=", full.Add(-time.Second)))
	grants := readPolicy(ctx, g).Status.RecentMigrations
	g.Expect(grants).To(ContainElement(And(HaveField("Pods", int32(1)), HaveField("Time.Time", BeTemporally(">=", full)))),
		"the new grant is in the status")
	for _, gr := range grants {
		g.Expect(gr.Time.Time).To(BeTemporally(">", time.Now().Add(-time.Minute)), "grants that left the window are dropped")
	}
}

// metric reads one series of the manager's metrics (the controller runs in
// this process, on controller-runtime's registry): a gauge's or counter's
// value, or a histogram's sample count and sum.
func metric(g *WithT, name string, labels map[string]string) (value float64, count uint64) {
	m := managermetrics.Series(g, name, labels)
	switch {
	case m.GetHistogram() != nil:
		return m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), 0
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), 0
	}
	return 0, 0
}

// The metrics after one node fails and its pod is migrated: nodes by
// verdict, migrations started, time from the first bad signal to the
// verdict and to migrated, and the zone guard per zone.
func TestMetricsCountVerdictsMigrationsAndTimes(t *testing.T) {
	ctx, g, ns := serialTest(t, 2*time.Minute)
	nodes := zone(t, ctx, g, "metrics", 3)
	pod := inPlaceSetPod(t, ctx, g, ns, "app-0", nodes[0].name)
	g.Eventually(func() string { return verdictOf(ctx, nodes[0].name) }).Should(Equal("Healthy"))
	g.Eventually(func() float64 {
		v, _ := metric(g, "cafe_nodelifecycle_nodes", map[string]string{"verdict": "Failed"})
		return v
	}).Should(BeZero())
	g.Eventually(func() float64 {
		v, _ := metric(g, "cafe_nodelifecycle_nodes", map[string]string{"verdict": "Healthy"})
		return v
	}).Should(BeNumerically(">=", 3))
	migrations, _ := metric(g, "cafe_nodelifecycle_migrations_total", nil)
	failedSum, failedVerdicts := metric(g, "cafe_nodelifecycle_time_to_verdict_seconds", map[string]string{"verdict": "Failed"})
	migratedSum, migrated := metric(g, "cafe_nodelifecycle_time_to_migrated_seconds", nil)

	// The kubelet stops: Ready turns Unknown at once (the first bad
	// signal), the Lease is stale 5 s after its last renewal (the second).
	nodes[0].alive <- false
	badAt := time.Now()
	setReady(ctx, g, nodes[0].name, corev1.ConditionUnknown)
	g.Eventually(func() bool { return migrationRequested(ctx, pod) }).Should(BeTrue())
	judgedIn := time.Since(badAt)

	// The controller records its metrics after its writes (the pod's
	// migration request first): wait for them rather than race them.
	g.Eventually(func() float64 {
		v, _ := metric(g, "cafe_nodelifecycle_nodes", map[string]string{"verdict": "Failed"})
		return v
	}).Should(Equal(1.0), "one node is Failed")
	g.Eventually(func() float64 {
		v, _ := metric(g, "cafe_nodelifecycle_migrations_total", nil)
		return v
	}).Should(Equal(migrations+1), "one migration started")
	g.Consistently(func() float64 {
		v, _ := metric(g, "cafe_nodelifecycle_migrations_total", nil)
		return v
	}, time.Second).Should(Equal(migrations+1), "only one migration started")
	sum, n := metric(g, "cafe_nodelifecycle_time_to_verdict_seconds", map[string]string{"verdict": "Failed"})
	g.Expect(n).To(Equal(failedVerdicts+1), "one Failed verdict observed")
	// Observed from the first bad signal, Ready's transition (set by the
	// test a moment after badAt): about the 5 s the Lease takes to go stale.
	g.Expect(sum - failedSum).To(And(BeNumerically(">=", 3), BeNumerically("<=", judgedIn.Seconds()+1)))
	v, _ := metric(g, "cafe_nodelifecycle_zone_guarded", map[string]string{"zone": "metrics"})
	g.Expect(v).To(BeZero(), "1 of 3 nodes does not trip the guard")
	_, n = metric(g, "cafe_nodelifecycle_time_to_migrated_seconds", nil)
	g.Expect(n).To(Equal(migrated), "not migrated while the pod is still on the node")

	// The InPlaceSet deletes the drained pod (played here): migrated.
	g.Expect(suite.Client.Delete(ctx, pod)).To(Succeed())
	g.Eventually(func() uint64 { _, n := metric(g, "cafe_nodelifecycle_time_to_migrated_seconds", nil); return n }).Should(Equal(migrated + 1))
	migratedIn := time.Since(badAt)
	sum, _ = metric(g, "cafe_nodelifecycle_time_to_migrated_seconds", nil)
	g.Expect(sum-migratedSum).To(And(BeNumerically(">=", judgedIn.Seconds()-1), BeNumerically("<=", migratedIn.Seconds()+1)),
		"from the first bad signal until the pod was gone")

	nodes[0].alive <- true
	setReady(ctx, g, nodes[0].name, corev1.ConditionTrue)
	g.Eventually(func() float64 {
		v, _ := metric(g, "cafe_nodelifecycle_nodes", map[string]string{"verdict": "Failed"})
		return v
	}).Should(BeZero())
}

// setZoneGuardWindow changes the zone guard's window for one test.
func setZoneGuardWindow(t *testing.T, ctx context.Context, g *WithT, seconds int32) {
	t.Helper()
	setPolicyField(t, ctx, g, func(s *cafev1alpha1.NodeLifecyclePolicySpec) *int32 { return &s.ZoneGuard.WindowSeconds }, seconds)
}

func zoneStatus(ctx context.Context, g *WithT, name string) cafev1alpha1.ZoneHealth {
	for _, z := range readPolicy(ctx, g).Status.Zones {
		if z.Name == name {
			return z
		}
	}
	return cafev1alpha1.ZoneHealth{}
}

// Review finding 7's probe: reports against half of a zone's nodes, then,
// once those are older than the zone guard's window (3 s here), against
// the other half. The guard counts every node bad now, so the second half
// is held, not cordoned: reports cannot cordon a zone a few nodes per
// window.
func TestSecurityF7_RollingReportsCannotCordonEverything(t *testing.T) {
	ctx, g, _ := serialTest(t, 3*time.Minute)
	setZoneGuardWindow(t, ctx, g, 3)
	nodes := zone(t, ctx, g, "rolling", 4)
	for _, n := range nodes {
		g.Eventually(func() string { return verdictOf(ctx, n.name) }).Should(Equal("Healthy"))
	}
	first, second := nodes[:2], nodes[2:]
	for _, n := range first {
		reportOn(t, ctx, g, n.name)
	}
	for _, n := range first {
		g.Eventually(func() nodeView { return viewOf(ctx, n.name) }).Should(And(HaveField("Verdict", "Suspect"), HaveField("NoSchedule", true)))
	}
	// The window passes: the first half no longer turned bad "recently".
	g.Eventually(func() cafev1alpha1.ZoneHealth { return zoneStatus(ctx, g, "rolling") }).Should(And(
		HaveField("Unhealthy", int32(2)), HaveField("RecentlyUnhealthy", int32(0)), HaveField("Guarded", false)))

	for _, n := range second {
		reportOn(t, ctx, g, n.name)
	}
	for _, n := range second {
		g.Eventually(func() nodeView { return viewOf(ctx, n.name) }).Should(And(
			HaveField("Verdict", "Suspect"), HaveField("Message", ContainSubstring("zone guard: 4 of 4 nodes"))))
	}
	g.Consistently(func() []bool {
		return []bool{viewOf(ctx, second[0].name).NoSchedule, viewOf(ctx, second[1].name).NoSchedule}
	}, 3*time.Second).Should(Equal([]bool{false, false}), "the second half is not cordoned")
	g.Expect(zoneStatus(ctx, g, "rolling").Guarded).To(BeTrue())
}

// Review finding 7: cordons are rate-limited like migrations. With
// spec.migration.maxNewTaintsPerMinute 2, reports against three nodes
// cordon two; the third is held, its condition saying why, and the grants
// are in the policy's status.
func TestSecurityF7_CordonsAreRateLimited(t *testing.T) {
	ctx, g, _ := serialTest(t, 4*time.Minute)
	taintsInWindow := func() int32 {
		var n int32
		for _, gr := range readPolicy(ctx, g).Status.RecentTaints {
			n += gr.Pods
		}
		return n
	}
	// Eight nodes: three bad ones stay below the zone guard. A node is
	// judged (and may be cordoned) before its kubelet first reports.
	nodes := zone(t, ctx, g, "burst", 8)
	for _, n := range nodes {
		g.Eventually(func() string { return verdictOf(ctx, n.name) }).Should(Equal("Healthy"))
	}
	// Taints added before (by earlier tests, or to the new nodes before
	// they reported) count against the limit for a minute.
	g.Eventually(taintsInWindow, 90*time.Second, time.Second).Should(BeZero())
	setPolicyField(t, ctx, g, func(s *cafev1alpha1.NodeLifecyclePolicySpec) *int32 { return &s.Migration.MaxNewTaintsPerMinute }, 2)
	for _, n := range nodes[:3] {
		reportOn(t, ctx, g, n.name)
	}
	cordoned := func() int {
		c := 0
		for _, n := range nodes[:3] {
			if viewOf(ctx, n.name).NoSchedule {
				c++
			}
		}
		return c
	}
	views := func() []nodeView {
		var out []nodeView
		for _, n := range nodes[:3] {
			out = append(out, viewOf(ctx, n.name))
		}
		return out
	}
	g.Eventually(cordoned).Should(Equal(2), func() string { return fmt.Sprintf("%+v; policy status %+v", views(), readPolicy(ctx, g).Status) })
	g.Eventually(func() []string {
		var held []string
		for _, n := range nodes[:3] {
			if v := viewOf(ctx, n.name); v.Verdict == "Suspect" && !v.NoSchedule && strings.Contains(v.Message, "taint rate limit: at most 2") {
				held = append(held, n.name)
			}
		}
		return held
	}).Should(HaveLen(1))
	g.Consistently(cordoned, 3*time.Second).Should(Equal(2))
	g.Expect(taintsInWindow()).To(Equal(int32(2)))
}
