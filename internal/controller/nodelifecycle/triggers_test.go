package nodelifecycle

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func readyNode(heartbeat time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "1", Labels: map[string]string{cafev1alpha1.ZoneNodeLabel: "zone-a"}},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(heartbeat)}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.2"}},
		},
	}
}

// A node update starts a pass only when it changes what a pass reads: a
// heartbeat alone (100 nodes' worth, all the time) does not.
func TestNodeUpdatesThatStartAPass(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	old := readyNode(t0)
	for _, tc := range []struct {
		name   string
		change func(*corev1.Node)
		passes bool
	}{
		{"heartbeat only", func(n *corev1.Node) {
			n.ResourceVersion = "2"
			n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(t0.Add(10 * time.Second))
		}, false},
		{"images only", func(n *corev1.Node) { n.Status.Images = []corev1.ContainerImage{{Names: []string{"x"}}} }, false},
		{"Ready turns Unknown", func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }, true},
		{"a condition's reason", func(n *corev1.Node) { n.Status.Conditions[0].Reason = "KubeletNotReady" }, true},
		{"a condition added", func(n *corev1.Node) {
			n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: "DiskPressure", Status: corev1.ConditionTrue})
		}, true},
		{"a taint", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}} }, true},
		{"cordoned", func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
		{"zone label", func(n *corev1.Node) { n.Labels[cafev1alpha1.ZoneNodeLabel] = "zone-b" }, true},
		{"an annotation", func(n *corev1.Node) { n.Annotations = map[string]string{"a": "b"} }, true},
		{"address", func(n *corev1.Node) { n.Status.Addresses[0].Address = "127.0.0.3" }, true},
		{"kubelet port", func(n *corev1.Node) { n.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250 }, true},
		{"deletion", func(n *corev1.Node) { now := metav1.NewTime(t0); n.DeletionTimestamp = &now }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := old.DeepCopy()
			tc.change(cur)
			got := nodeSignalsChanged.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: cur})
			NewWithT(t).Expect(got).To(Equal(tc.passes))
		})
	}
}

// The prober nudges the reconciler when a node's probe signal turns, not on
// every probe.
func TestProberReportsWhenTheProbeSignalTurns(t *testing.T) {
	g := NewWithT(t)
	turns := 0
	p := &Prober{results: map[string]*ProbeResult{}, Changed: func() { turns++ }}
	at := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	down := errors.New("connection refused")
	const threshold = 3
	steps := []struct {
		err       error
		wantTurns int
	}{
		{nil, 0},  // answering
		{down, 0}, // 1 failure
		{down, 0}, // 2
		{down, 1}, // 3: the signal turns bad
		{down, 1}, // 4: still bad
		{nil, 2},  // answers again: the signal turns good
		{nil, 2},
	}
	for i, s := range steps {
		p.record("n1", "127.0.0.2:10250", at.Add(time.Duration(i)*time.Second), s.err, threshold)
		g.Expect(turns).To(Equal(s.wantTurns), "after probe %d", i)
	}
	g.Expect(p.Result("n1").ConsecutiveFailures).To(BeZero())
}

// A fresh Lease's staleness is a deadline the pass is scheduled for; the
// cluster is calm only with every node Healthy and no bad signal.
func TestLeaseDeadlineAndCalm(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	p := cafev1alpha1.DefaultNodeLifecyclePolicySpec()
	p.LeaseStaleSeconds = 20
	renewed := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now.Add(-8 * time.Second)}}}
	g.Expect(leaseStaleIn(renewed, &p, now)).To(Equal(12 * time.Second))
	stale := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: now.Add(-30 * time.Second)}}}
	g.Expect(leaseStaleIn(stale, &p, now)).To(BeZero())
	g.Expect(leaseStaleIn(nil, &p, now)).To(BeZero())

	healthy := nodeState{Judgement: nodeJudgement{Verdict: cafev1alpha1.NodeVerdictHealthy}}
	badSignal := nodeState{Judgement: nodeJudgement{Verdict: cafev1alpha1.NodeVerdictHealthy, Bad: []Signal{{Name: cafev1alpha1.SignalLease, Bad: true}}}}
	suspect := nodeState{Judgement: nodeJudgement{Verdict: cafev1alpha1.NodeVerdictSuspect}}
	g.Expect(allCalm([]nodeState{healthy, healthy})).To(BeTrue())
	g.Expect(allCalm([]nodeState{healthy, badSignal})).To(BeFalse())
	g.Expect(allCalm([]nodeState{suspect, healthy})).To(BeFalse())
}
