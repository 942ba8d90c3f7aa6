package nodelifecycle

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework/crdcheck"
)

// fuzzGrant is one grant of the rate limits, as the fuzz target counts
// them on its own.
type fuzzGrant struct {
	at time.Time
	n  int
}

// FuzzPlanOnAdmittedPolicies builds a NodeLifecyclePolicy, up to 48 nodes
// (zone, Ready, Lease, bad conditions, CAFE's taints, InPlaceSet pods) and
// NodeHealthReports from the fuzzer's values, keeps the policy and the
// reports the CRDs admit (crdcheck: the API server's schema and CEL
// validation, in-process), and reconciles them for up to 8 rounds the way
// Reconcile does — judgedState, zoneHealth, the rate windows, planActions,
// the grants recorded, the taints and migrations acted on, policyStatus
// fed back — with the nodes' signals changing between rounds: never a
// panic; one action per node; no taint or migration in Observe mode, none
// on a Healthy node, none new in a guarded zone; only the node's movable
// pods migrated; in any minute at most maxPodsPerMinute migrations and
// maxNewTaintsPerMinute new taints, counted by the target itself; and the
// policy's status admitted by the CRD. Seeds are in
// testdata/fuzz/FuzzPlanOnAdmittedPolicies.
func FuzzPlanOnAdmittedPolicies(f *testing.F) {
	policyV := crdcheck.MustFor(f, "NodeLifecyclePolicy")
	reportV := crdcheck.MustFor(f, "NodeHealthReport")
	// Enforce, defaults otherwise: failing nodes over zones.
	f.Add(uint8(1), uint8(0), int32(0), int32(0), int32(0), uint8(80), []byte{0x03, 0x13, 0x23, 0x30, 0x40}, []byte{}, []byte{20, 20, 20})
	// Tight rate limits, many failed nodes over zones, reports.
	f.Add(uint8(1), uint8(0x11), int32(2), int32(1), int32(0), uint8(100), []byte{0x07, 0x17, 0x27, 0x37, 0x0f, 0x1f, 0x2f, 0x3f, 0x01, 0x11}, []byte{0x01, 0x12, 0x23}, []byte{5, 30, 61, 61})
	// Observe mode, fresh leases accepted with a report.
	f.Add(uint8(2), uint8(0x22), int32(10), int32(10), int32(5), uint8(0), []byte{0x87, 0x97, 0xc7}, []byte{0x00, 0x01}, []byte{30, 30})
	f.Fuzz(func(t *testing.T, mode, thresholds uint8, maxPods, maxTaints, otherAfter int32, guardPercent uint8, nodeBytes, reportBytes, steps []byte) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		policy, refused, err := crdcheck.Admitted(ctx, policyV, fuzzedPolicy(mode, thresholds, maxPods, maxTaints, otherAfter, guardPercent))
		if err != nil {
			t.Fatal(err)
		}
		if refused != nil {
			return
		}
		policy.Spec.Default()
		p := &policy.Spec

		var nodes []*corev1.Node
		leases := map[string]*coordinationv1.Lease{}
		pods := map[string][]*corev1.Pod{}
		for i, b := range nodeBytes[:min(len(nodeBytes), 48)] {
			n, lease, ps := fuzzedNode(i, b, now)
			nodes, leases[n.Name], pods[n.Name] = append(nodes, n), lease, ps
		}
		reports := map[string][]cafev1alpha1.NodeHealthReport{}
		for i, b := range reportBytes[:min(len(reportBytes), 32)] {
			if len(nodes) == 0 {
				break
			}
			rep, refused, err := crdcheck.Admitted(ctx, reportV, fuzzedReport(i, b, nodes[int(b&0x0f)%len(nodes)].Name, now))
			if err != nil {
				t.Fatal(err)
			}
			if refused == nil {
				reports[rep.Spec.NodeName] = append(reports[rep.Spec.NodeName], *rep)
			}
		}

		r := &Reconciler{cleanStart: map[string]time.Time{}}
		var migrations, taints []fuzzGrant
		for round, step := range steps[:min(len(steps), 8)] {
			now = now.Add(time.Duration(step) * time.Second)
			if round > 0 {
				// Between rounds a node's Ready condition or Lease changes.
				n := nodes[(round*7+int(step))%max(len(nodes), 1):]
				if len(n) > 0 {
					flip(n[0], leases[n[0].Name], step, now)
				}
			}
			recorded := map[string]cafev1alpha1.NodeVerdictRecord{}
			for _, rec := range policy.Status.UnhealthyNodes {
				recorded[rec.Node] = rec
			}
			states := make([]nodeState, 0, len(nodes))
			for _, node := range nodes {
				ev := nodeEvidence{Node: node, Lease: leases[node.Name], Reports: reports[node.Name]}
				st, _ := judgedState(ev, p, recorded, r.cleanSince(node.Name, signalsOf(ev, p, now), p, now), now)
				if st.Judgement.Verdict == cafev1alpha1.NodeVerdictFailed {
					for _, pod := range pods[node.Name] {
						if pod.Annotations[cafev1alpha1.MigrationRequestedAnnotation] != "" {
							st.Migrating = append(st.Migrating, pod)
						} else {
							st.Movable = append(st.Movable, pod)
						}
					}
				}
				states = append(states, st)
			}
			d := decideActions(states, p, policy.Status, now)
			zones, plan := d.zones, d.plan

			checkPlan(t, states, zones, p, plan)
			migrations = append(migrations, fuzzGrant{now, plan.Granted})
			taints = append(taints, fuzzGrant{now, plan.TaintsGranted})
			if n := inLastMinute(migrations, now); n > int(p.Migration.MaxPodsPerMinute) {
				t.Fatalf("%d migrations within a minute, at most %d", n, p.Migration.MaxPodsPerMinute)
			}
			if n := inLastMinute(taints, now); n > int(p.Migration.MaxNewTaintsPerMinute) {
				t.Fatalf("%d new taints within a minute, at most %d", n, p.Migration.MaxNewTaintsPerMinute)
			}

			// recordGrant, then act: the grants first, then the writes.
			if plan.Granted > 0 || plan.TaintsGranted > 0 {
				policy.Status.RecentMigrations, policy.Status.RecentTaints = d.migrationGrants, d.taintGrants
			}
			for i, a := range plan.Nodes {
				setTaints(states[i].Node, a.NoSchedule, a.NoExecute)
				for _, pod := range a.Migrate {
					pod.SetAnnotations(map[string]string{cafev1alpha1.MigrationRequestedAnnotation: "true"})
				}
			}
			policy.Status = *policyStatus(policy, states, zones, now)
			if _, refused, err := crdcheck.Admitted(ctx, policyV, policy); err != nil || refused != nil {
				t.Fatalf("the policy's status is refused: %v %v", err, refused)
			}
		}
	})
}

// checkPlan checks one plan against the states and zones it was made from.
func checkPlan(t *testing.T, states []nodeState, zones []cafev1alpha1.ZoneHealth, p *cafev1alpha1.NodeLifecyclePolicySpec, plan actionPlan) {
	if len(plan.Nodes) != len(states) {
		t.Fatalf("%d actions for %d nodes", len(plan.Nodes), len(states))
	}
	guarded := map[string]bool{}
	for _, z := range zones {
		guarded[z.Name] = z.Guarded
	}
	granted, taintsGranted := 0, 0
	for i, a := range plan.Nodes {
		st := states[i]
		if a.Node != st.Name {
			t.Fatalf("action %d is for %s, not %s", i, a.Node, st.Name)
		}
		newTaints := 0
		if a.NoSchedule && !st.NoSchedule {
			newTaints++
		}
		if a.NoExecute && !st.NoExecute {
			newTaints++
		}
		taintsGranted += newTaints
		granted += len(a.Migrate)
		switch {
		case (p.Mode == cafev1alpha1.NodeLifecycleObserve || st.Judgement.Verdict == cafev1alpha1.NodeVerdictHealthy) && (a.NoSchedule || a.NoExecute || len(a.Migrate) > 0):
			t.Fatalf("node %s (%s, mode %s): taints %v/%v, %d migrations", st.Name, st.Judgement.Verdict, p.Mode, a.NoSchedule, a.NoExecute, len(a.Migrate))
		case guarded[st.Zone] && (newTaints > 0 || len(a.Migrate) > 0):
			t.Fatalf("node %s in guarded zone %q: %d new taints, %d migrations", st.Name, st.Zone, newTaints, len(a.Migrate))
		case st.Judgement.Verdict != cafev1alpha1.NodeVerdictFailed && len(a.Migrate) > 0:
			t.Fatalf("node %s is %s: %d migrations", st.Name, st.Judgement.Verdict, len(a.Migrate))
		}
		for _, pod := range a.Migrate {
			found := false
			for _, m := range st.Movable {
				found = found || m == pod
			}
			if !found {
				t.Fatalf("node %s: migrates %s, not one of its movable pods", st.Name, pod.GetName())
			}
		}
	}
	if granted != plan.Granted || taintsGranted != plan.TaintsGranted {
		t.Fatalf("the plan counts %d migrations and %d taints, its nodes %d and %d", plan.Granted, plan.TaintsGranted, granted, taintsGranted)
	}
}

func inLastMinute(grants []fuzzGrant, now time.Time) int {
	n := 0
	for _, g := range grants {
		if g.at.Add(rateLimitWindow).After(now) {
			n += g.n
		}
	}
	return n
}

// fuzzedPolicy is a policy in mode (0 default, 1 Enforce, 2 Observe; 2 also
// accepts a fresh Lease with an external report) with the suspect and
// failed minSignals in the low and high nibble of thresholds (0: default),
// the rate limits, otherPodsAfterSeconds and the zone guard's percent (0:
// default).
func fuzzedPolicy(mode, thresholds uint8, maxPods, maxTaints, otherAfter int32, guardPercent uint8) *cafev1alpha1.NodeLifecyclePolicy {
	policy := &cafev1alpha1.NodeLifecyclePolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "NodeLifecyclePolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.NodeLifecyclePolicyName, Generation: 1},
		Spec: cafev1alpha1.NodeLifecyclePolicySpec{
			Mode: []cafev1alpha1.NodeLifecycleMode{"", cafev1alpha1.NodeLifecycleEnforce, cafev1alpha1.NodeLifecycleObserve}[mode%3],
			Migration: cafev1alpha1.MigrationSpec{
				MaxPodsPerMinute: maxPods, MaxNewTaintsPerMinute: maxTaints, OtherPodsAfterSeconds: otherAfter,
			},
			ZoneGuard: cafev1alpha1.ZoneGuardSpec{MaxUnhealthyPercent: int32(guardPercent)},
		},
	}
	if mode%3 == 2 {
		policy.Spec.Migration.FreshLease = cafev1alpha1.FreshLeaseWithExternalReport
	}
	if thresholds != 0 {
		policy.Spec.Suspect = cafev1alpha1.VerdictThreshold{MinSignals: int32(thresholds & 0x0f)}
		policy.Spec.Failed = cafev1alpha1.VerdictThreshold{MinSignals: int32(thresholds >> 4)}
	}
	return policy
}

// fuzzedNode is the i-th node from b: bits 0-1 its Ready condition (True,
// False, Unknown, none), bit 2 a stale Lease, bit 3 a bad condition, bits
// 4-5 its zone, bit 6 CAFE's NoSchedule taint, bit 7 a fresh Lease even
// when stale (a partition the kubelet survives), with i%4 InPlaceSet pods.
func fuzzedNode(i int, b byte, now time.Time) (*corev1.Node, *coordinationv1.Lease, []*corev1.Pod) {
	created := now.Add(-time.Hour)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("node-%d", i), CreationTimestamp: metav1.NewTime(created),
		Labels: map[string]string{cafev1alpha1.ZoneNodeLabel: fmt.Sprintf("zone-%d", (b>>4)&0x03)},
	}}
	if s := []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown, ""}[b&0x03]; s != "" {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: s, LastTransitionTime: metav1.NewTime(now.Add(-time.Duration(b) * time.Second))})
	}
	if b&0x08 != 0 {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: "KernelDeadlock", Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))})
	}
	if b&0x40 != 0 {
		setTaints(n, true, false)
	}
	renew := now
	if b&0x04 != 0 && b&0x80 == 0 {
		renew = now.Add(-10 * time.Minute)
	}
	lease := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: ptr.To(metav1.NewMicroTime(renew))}}
	var pods []*corev1.Pod
	for j := range i % 4 {
		pods = append(pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-pod-%d", n.Name, j)}})
	}
	return n, lease, pods
}

// flip changes a node between rounds from b: its Ready condition turns
// True or False, its Lease is renewed or goes stale.
func flip(n *corev1.Node, lease *coordinationv1.Lease, b byte, now time.Time) {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse}[b&0x01]
			n.Status.Conditions[i].LastTransitionTime = metav1.NewTime(now)
		}
	}
	if b&0x02 != 0 {
		lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
	}
}

// fuzzedReport is the i-th report, on node, from b: bit 4 Healthy, bit 5
// expired, bit 6 a stateSince in the future, bit 7 no until.
func fuzzedReport(i int, b byte, node string, now time.Time) *cafev1alpha1.NodeHealthReport {
	rep := &cafev1alpha1.NodeHealthReport{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "NodeHealthReport"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("report-%d", i), CreationTimestamp: metav1.NewTime(now.Add(-5 * time.Minute))},
		Spec: cafev1alpha1.NodeHealthReportSpec{
			NodeName: node, Source: "npd", State: cafev1alpha1.NodeReportUnhealthy, Reason: "DiskFailure",
			Until: ptr.To(metav1.NewTime(now.Add(time.Hour))),
		},
	}
	if b&0x10 != 0 {
		rep.Spec.State = cafev1alpha1.NodeReportHealthy
	}
	if b&0x20 != 0 {
		rep.Spec.Until = ptr.To(metav1.NewTime(now.Add(-time.Minute)))
	}
	if b&0x40 != 0 {
		rep.Spec.StateSince = ptr.To(metav1.NewTime(now.Add(time.Minute)))
	}
	if b&0x80 != 0 {
		rep.Spec.Until = nil
	}
	return rep
}

// setTaints puts CAFE's taints on n as act would.
func setTaints(n *corev1.Node, noSchedule, noExecute bool) {
	var out []corev1.Taint
	for _, t := range n.Spec.Taints {
		if t.Key != cafev1alpha1.UnhealthyTaintKey {
			out = append(out, t)
		}
	}
	if noSchedule {
		out = append(out, corev1.Taint{Key: cafev1alpha1.UnhealthyTaintKey, Effect: corev1.TaintEffectNoSchedule})
	}
	if noExecute {
		out = append(out, corev1.Taint{Key: cafev1alpha1.UnhealthyTaintKey, Effect: corev1.TaintEffectNoExecute})
	}
	n.Spec.Taints = out
}
