package nodelifecycle_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	nhrwebhook "github.com/cafe-io/cafe/internal/webhook/nodehealthreport"
	"github.com/cafe-io/cafe/test/framework"
)

// One real kube-apiserver and CAFE's manager (framework.ControllerSuite);
// the tests play the kubelets: they write nodes, their Ready conditions and
// Leases, and renew the Leases of the nodes meant to be alive.
var suite = framework.ControllerSuite{Prepare: fastPolicy}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

// fastPolicy makes the cluster's policy fast: every signal counts at once;
// lease stale after 5 s; the probe judges on its first failure; recovery
// is immediate.
func fastPolicy(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: corev1.NamespaceNodeLease}}); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	policy := &cafev1alpha1.NodeLifecyclePolicy{ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.NodeLifecyclePolicyName}}
	_, err := controllerutil.CreateOrUpdate(ctx, c, policy, func() error {
		policy.Spec = cafev1alpha1.DefaultNodeLifecyclePolicySpec()
		policy.Spec.LeaseStaleSeconds = 5
		policy.Spec.Suspect = cafev1alpha1.VerdictThreshold{MinSignals: 1, ForSeconds: 0}
		policy.Spec.Failed = cafev1alpha1.VerdictThreshold{MinSignals: 2, ForSeconds: 0}
		policy.Spec.RecoverySeconds = 0
		policy.Spec.Probe = cafev1alpha1.KubeletProbeSpec{PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 1}
		policy.Spec.Migration.OtherPodsAfterSeconds = 0
		policy.Spec.Migration.MaxPodsPerMinute = 1000
		policy.Spec.Migration.MaxNewTaintsPerMinute = 1000
		return nil
	})
	return err
}

// kubelet plays a node's kubelet: registers it Ready with a Lease and,
// while alive, renews the Lease every second.
type kubelet struct {
	name, zone string
	alive      chan bool
}

func startNode(t *testing.T, ctx context.Context, g *WithT, name, zone string) *kubelet {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{cafev1alpha1.ZoneNodeLabel: zone}}}
	g.Expect(suite.Client.Create(ctx, node)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), node) })
	setReady(ctx, g, name, corev1.ConditionTrue)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
	g.Expect(suite.Client.Create(ctx, lease)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), lease) })
	k := &kubelet{name: name, zone: zone, alive: make(chan bool, 1)}
	go func() {
		alive := true
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case alive = <-k.alive:
			case <-tick.C:
				if !alive {
					continue
				}
				l := &coordinationv1.Lease{}
				if suite.Client.Get(ctx, client.ObjectKeyFromObject(lease), l) == nil {
					l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
					_ = suite.Client.Update(ctx, l)
				}
			}
		}
	}()
	return k
}

func setReady(ctx context.Context, g *WithT, name string, status corev1.ConditionStatus) {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: status, Reason: "Test", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}}})
	g.Expect(suite.Client.Status().Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, client.RawPatch(types.StrategicMergePatchType, patch))).To(Succeed())
}

// unreachableKubelet points the node's kubelet endpoint at a closed port.
func unreachableKubelet(ctx context.Context, g *WithT, name string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	port := l.Addr().(*net.TCPAddr).Port
	g.Expect(l.Close()).To(Succeed())
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"addresses":       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		"daemonEndpoints": map[string]any{"kubeletEndpoint": map[string]any{"Port": port}},
	}})
	g.Expect(suite.Client.Status().Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, client.RawPatch(types.StrategicMergePatchType, patch))).To(Succeed())
}

func reportOn(t *testing.T, ctx context.Context, g *WithT, node string) *cafev1alpha1.NodeHealthReport {
	r := &cafev1alpha1.NodeHealthReport{
		ObjectMeta: metav1.ObjectMeta{GenerateName: node + "-"},
		Spec:       cafev1alpha1.NodeHealthReportSpec{NodeName: node, Source: "zabbix", Reason: "DiskLatency", Message: "p99 2 s"},
	}
	g.Expect(suite.Client.Create(ctx, r)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), r) })
	return r
}

// inPlaceSetPod is a running pod an InPlaceSet controls, bound to node,
// labelled like every pod CAFE creates (the manager caches no other).
func inPlaceSetPod(t *testing.T, ctx context.Context, g *WithT, ns, name, node string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{cafev1alpha1.RevisionHashLabel: "v1"}, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "InPlaceSet", Name: "gone", UID: uuid.NewUUID(), Controller: ptr.To(true),
		}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
	}
	g.Expect(suite.Client.Create(ctx, pod)).To(Succeed())
	return pod
}

type nodeView struct {
	Verdict    string
	Message    string
	NoSchedule bool
	NoExecute  bool
}

func viewOf(ctx context.Context, name string) nodeView {
	node := &corev1.Node{}
	if err := suite.Client.Get(ctx, types.NamespacedName{Name: name}, node); err != nil {
		return nodeView{}
	}
	var v nodeView
	for _, c := range node.Status.Conditions {
		if string(c.Type) == cafev1alpha1.NodeHealthyCondition {
			v.Verdict, v.Message = c.Reason, c.Message
		}
	}
	for _, t := range node.Spec.Taints {
		if t.Key == cafev1alpha1.UnhealthyTaintKey {
			v.NoSchedule = v.NoSchedule || t.Effect == corev1.TaintEffectNoSchedule
			v.NoExecute = v.NoExecute || t.Effect == corev1.TaintEffectNoExecute
		}
	}
	return v
}

func verdictOf(ctx context.Context, name string) string { return viewOf(ctx, name).Verdict }

func migrationRequested(ctx context.Context, pod *corev1.Pod) bool {
	p := &corev1.Pod{}
	if suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), p) != nil {
		return false
	}
	return p.Annotations[cafev1alpha1.MigrationRequestedAnnotation] != ""
}

// zone returns n live nodes of a new zone (the zone guard trips when more
// than half of them are unhealthy).
func zone(t *testing.T, ctx context.Context, g *WithT, z string, n int) []*kubelet {
	var out []*kubelet
	for i := range n {
		out = append(out, startNode(t, ctx, g, z+"-"+strconv.Itoa(i), z))
	}
	return out
}

// The verdict on a real API server for combinations of signals (the fast
// policy of TestMain: Suspect on 1 bad signal, Failed on 2).
func TestVerdictFromSignalCombinations(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	nodes := zone(t, ctx, g, "combo", 5)
	live, reported, reportedAndProbe := nodes[0].name, nodes[1].name, nodes[2].name
	pod := inPlaceSetPod(t, ctx, g, ns, "on-probe-node", reportedAndProbe)

	// Every node starts Healthy: judged before its Ready condition and Lease
	// arrived it was Failed, and a verdict never softens while a signal
	// (the report below) is bad.
	for _, n := range nodes {
		g.Eventually(func() string { return verdictOf(ctx, n.name) }).Should(Equal("Healthy"), n.name)
	}

	By := func(string) {}
	By("an external report alone: Suspect, cordoned, nothing migrated")
	reportOn(t, ctx, g, reported)
	g.Eventually(func() nodeView { return viewOf(ctx, reported) }).Should(And(
		HaveField("Verdict", "Suspect"), HaveField("NoSchedule", true), HaveField("NoExecute", false),
		HaveField("Message", ContainSubstring("ExternalReport: zabbix/DiskLatency (p99 2 s)"))))

	By("a report plus a failing probe on a node that renews its Lease: Failed, but held by the fresh-Lease rule")
	reportOn(t, ctx, g, reportedAndProbe)
	unreachableKubelet(ctx, g, reportedAndProbe)
	g.Eventually(func() nodeView { return viewOf(ctx, reportedAndProbe) }).Should(And(
		HaveField("Verdict", "Failed"), HaveField("NoSchedule", true),
		HaveField("Message", And(ContainSubstring("KubeletProbe"), ContainSubstring("ExternalReport"), ContainSubstring("Lease is fresh")))))
	g.Consistently(func() bool { return migrationRequested(ctx, pod) }, 3*time.Second).Should(BeFalse())
	g.Expect(verdictOf(ctx, live)).To(Equal("Healthy"))
}

// A node whose heartbeats stop (Lease not renewed, then NotReady) is Failed,
// its InPlaceSet pod asked to migrate; once no such pod is left the node
// gets NoExecute; when it heartbeats again it is Healthy and untainted.
func TestHeartbeatLossFailsAndMigratesThenRecovers(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	nodes := zone(t, ctx, g, "dead", 3)
	dead := nodes[0]
	pod := inPlaceSetPod(t, ctx, g, ns, "app-0", dead.name)
	other := inPlaceSetPod(t, ctx, g, ns, "app-1", nodes[1].name)
	g.Eventually(func() string { return verdictOf(ctx, dead.name) }).Should(Equal("Healthy"))

	dead.alive <- false
	setReady(ctx, g, dead.name, corev1.ConditionUnknown)
	g.Eventually(func() nodeView { return viewOf(ctx, dead.name) }, 30*time.Second).Should(And(
		HaveField("Verdict", "Failed"), HaveField("NoSchedule", true), HaveField("Message", ContainSubstring("Lease last renewed"))))
	g.Eventually(func() bool { return migrationRequested(ctx, pod) }).Should(BeTrue())
	g.Expect(migrationRequested(ctx, other)).To(BeFalse(), "a pod of a healthy node is left alone")
	since, err := time.Parse(time.RFC3339, unhealthySince(ctx, g, dead.name))
	g.Expect(err).NotTo(HaveOccurred(), "the node records since when it is unhealthy")
	g.Expect(since).To(BeTemporally("~", time.Now(), 30*time.Second))
	g.Expect(viewOf(ctx, dead.name).NoExecute).To(BeFalse(), "NoExecute waits until the InPlaceSet pods are gone")

	// The InPlaceSet deletes the drained pod (played here).
	g.Expect(suite.Client.Delete(ctx, pod)).To(Succeed())
	g.Eventually(func() bool { return viewOf(ctx, dead.name).NoExecute }).Should(BeTrue())

	dead.alive <- true
	setReady(ctx, g, dead.name, corev1.ConditionTrue)
	g.Eventually(func() nodeView { return viewOf(ctx, dead.name) }, 30*time.Second).Should(And(
		HaveField("Verdict", "Healthy"), HaveField("NoSchedule", false), HaveField("NoExecute", false)))
	g.Eventually(func() string { return unhealthySince(ctx, g, dead.name) }).Should(BeEmpty(), "a Healthy node carries no unhealthy-since")
}

func unhealthySince(ctx context.Context, g *WithT, name string) string {
	node := &corev1.Node{}
	g.Expect(suite.Client.Get(ctx, types.NamespacedName{Name: name}, node)).To(Succeed())
	return node.Annotations[cafev1alpha1.UnhealthySinceAnnotation]
}

// Two of three nodes of a zone failing together trip the zone guard:
// nothing is tainted or migrated there, the policy says so; the guard
// clears when they heartbeat again.
func TestZoneGuardHoldsAZoneWhereMostNodesFail(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	nodes := zone(t, ctx, g, "guard", 3)
	pod := inPlaceSetPod(t, ctx, g, ns, "app-0", nodes[0].name)
	for _, n := range nodes[:2] {
		n.alive <- false
		setReady(ctx, g, n.name, corev1.ConditionUnknown)
	}
	policyGuard := func() *metav1.Condition {
		p := &cafev1alpha1.NodeLifecyclePolicy{}
		if suite.Client.Get(ctx, types.NamespacedName{Name: cafev1alpha1.NodeLifecyclePolicyName}, p) != nil {
			return nil
		}
		return meta.FindStatusCondition(p.Status.Conditions, cafev1alpha1.NodeLifecycleZoneGuardCondition)
	}
	g.Eventually(policyGuard, 30*time.Second).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue), HaveField("Message", ContainSubstring("guard (2 of 3 nodes"))))
	for _, n := range nodes[:2] {
		g.Eventually(func() nodeView { return viewOf(ctx, n.name) }).Should(And(HaveField("Verdict", "Failed"), HaveField("Message", ContainSubstring("zone guard"))))
	}
	// The first node to turn bad may have been cordoned before the second
	// tripped the guard (1 of 3 is below 50%); nothing more happens.
	g.Consistently(func() bool {
		return migrationRequested(ctx, pod) || (viewOf(ctx, nodes[0].name).NoSchedule && viewOf(ctx, nodes[1].name).NoSchedule)
	}, 3*time.Second).Should(BeFalse())

	for _, n := range nodes[:2] {
		n.alive <- true
		setReady(ctx, g, n.name, corev1.ConditionTrue)
	}
	g.Eventually(func() string {
		for _, n := range nodes {
			if v := verdictOf(ctx, n.name); v != "Healthy" {
				return n.name + " " + v
			}
		}
		return ""
	}, 30*time.Second).Should(BeEmpty())
	g.Eventually(func() string {
		p := &cafev1alpha1.NodeLifecyclePolicy{}
		_ = suite.Client.Get(ctx, types.NamespacedName{Name: cafev1alpha1.NodeLifecyclePolicyName}, p)
		for _, z := range p.Status.Zones {
			if z.Name == "guard" && !z.Guarded {
				return "clear"
			}
		}
		return "guarded"
	}).Should(Equal("clear"))
}

// Reports about unknown nodes are refused, naming the field.
func TestReportsForUnknownNodesAreRefused(t *testing.T) {
	ctx, g, _ := suite.Setup(t)
	startNode(t, ctx, g, "known-0", "known")
	v := nhrwebhook.Validator{Reader: suite.Client}
	review := func(spec cafev1alpha1.NodeHealthReportSpec) admission.Response {
		spec.Source, spec.Reason = "zabbix", "X"
		raw, _ := json.Marshal(&cafev1alpha1.NodeHealthReport{Spec: spec})
		return v.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}})
	}
	g.Expect(review(cafev1alpha1.NodeHealthReportSpec{NodeName: "known-0"}).Allowed).To(BeTrue())
	denied := review(cafev1alpha1.NodeHealthReportSpec{NodeName: "no-such-node-" + strconv.Itoa(os.Getpid())})
	g.Expect(denied.Allowed).To(BeFalse())
	g.Expect(denied.Result.Message).To(ContainSubstring("spec.nodeName: Not found"))

	// Reports about classic hosts alike.
	host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "known-host-" + strconv.Itoa(os.Getpid())}, Spec: cafev1alpha1.ClassicHostSpec{Zone: "known", Address: "127.0.0.1"}}
	g.Expect(suite.Client.Create(ctx, host)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), host) })
	g.Expect(review(cafev1alpha1.NodeHealthReportSpec{HostName: host.Name}).Allowed).To(BeTrue())
	denied = review(cafev1alpha1.NodeHealthReportSpec{HostName: "no-such-host"})
	g.Expect(denied.Allowed).To(BeFalse())
	g.Expect(denied.Result.Message).To(ContainSubstring(`spec.hostName: Not found: classic host "no-such-host" does not exist`))
}

// Review finding 7: whoever writes node status (node-problem-detector, a
// kubelet) cannot keep a node Failed by writing CAFE's own condition: the
// previous verdict comes from the policy's status, which only CAFE writes.
// One bad signal (a report) makes the node Suspect; a forged
// "cafe.io/NodeHealthy: Failed" is overwritten with Suspect, not kept.
func TestSecurityF7_NodeStatusWritersCannotKeepANodeFailed(t *testing.T) {
	ctx, g, _ := suite.Setup(t)
	name := zone(t, ctx, g, "forged", 3)[0].name
	g.Eventually(func() string { return verdictOf(ctx, name) }).Should(Equal("Healthy"))
	reportOn(t, ctx, g, name)
	g.Eventually(func() string { return verdictOf(ctx, name) }).Should(Equal("Suspect"))

	forged, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: corev1.NodeConditionType(cafev1alpha1.NodeHealthyCondition), Status: corev1.ConditionFalse, Reason: "Failed", Message: "forged",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}}})
	g.Expect(suite.Client.Status().Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, client.RawPatch(types.StrategicMergePatchType, forged))).To(Succeed())
	g.Eventually(func() nodeView { return viewOf(ctx, name) }).Should(And(HaveField("Verdict", "Suspect"), HaveField("Message", ContainSubstring("ExternalReport"))))
	g.Consistently(func() string { return verdictOf(ctx, name) }, 3*time.Second).Should(Equal("Suspect"))
}
