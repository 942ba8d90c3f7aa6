package nodelifecycle_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/ssa"
)

// hostAgent plays a classic host's agent, as the tests above play
// kubelets: it registers the host with AgentReady and a health endpoint on
// loopback, and renews the host's Lease every second while alive. The
// classichost controller of CAFE's manager probes the endpoint.
type hostAgent struct {
	name     string
	alive    chan bool
	listener net.Listener
}

func startHost(t *testing.T, ctx context.Context, g *WithT, name, zone string) *hostAgent {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.ClassicHostLeaseNamespace}}
	g.Expect(client.IgnoreAlreadyExists(suite.Client.Create(ctx, ns))).To(Succeed())
	host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.ClassicHostSpec{Zone: zone, Address: "127.0.0.1"}}
	g.Expect(suite.Client.Create(ctx, host)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), host) })
	a := &hostAgent{name: name, alive: make(chan bool, 1)}
	a.serve(ctx, g, host)

	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
	g.Expect(suite.Client.Create(ctx, lease)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), lease) })
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		alive := true
		for {
			select {
			case <-ctx.Done():
				return
			case alive = <-a.alive:
			case <-tick.C:
				if alive {
					renewed := lease.DeepCopy()
					renewed.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
					_ = suite.Client.Patch(ctx, renewed, client.MergeFrom(lease))
				}
			}
		}
	}()
	t.Cleanup(a.down)
	return a
}

// serve opens the agent's health endpoint on a new port and publishes it
// with AgentReady, as the agent applies its own status.
func (a *hostAgent) serve(ctx context.Context, g *WithT, host *cafev1alpha1.ClassicHost) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	a.listener = l
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	}()
	status := &cafev1alpha1.ClassicHost{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicHost"},
		ObjectMeta: metav1.ObjectMeta{Name: a.name},
		Status: cafev1alpha1.ClassicHostStatus{
			AgentEndpoint: &cafev1alpha1.ClassicHostAgentEndpoint{Port: int32(l.Addr().(*net.TCPAddr).Port)},
			Conditions:    []metav1.Condition{{Type: cafev1alpha1.ClassicHostAgentReadyCondition, Status: metav1.ConditionTrue, Reason: "Ready", Message: "test agent", LastTransitionTime: metav1.Now()}},
		},
	}
	body, err := ssa.Body(status, "spec")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(suite.Client.Status().Apply(ctx, body, client.FieldOwner("test-agent"), client.ForceOwnership)).To(Succeed())
}

// down closes the agent's endpoint: CAFE's probe of it fails.
func (a *hostAgent) down() { _ = a.listener.Close() }

type hostView struct {
	Verdict, Message string
	Cordoned         bool
}

func hostViewOf(ctx context.Context, name string) hostView {
	h := &cafev1alpha1.ClassicHost{}
	if suite.Client.Get(ctx, client.ObjectKey{Name: name}, h) != nil {
		return hostView{}
	}
	var v hostView
	if c := meta.FindStatusCondition(h.Status.Conditions, cafev1alpha1.ClassicHostHealthyCondition); c != nil {
		v.Verdict, v.Message = c.Reason, c.Message
	}
	v.Cordoned = meta.IsStatusConditionFalse(h.Status.Conditions, cafev1alpha1.ClassicHostSchedulableCondition)
	return v
}

// classicSetInstance is an instance a ClassicSet controls, on host.
func classicSetInstance(ctx context.Context, g *WithT, ns, name, host string) *cafev1alpha1.ClassicInstance {
	inst := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicSet", Name: "gone", UID: uuid.NewUUID(), Controller: ptr.To(true),
		}}},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: cafev1alpha1.ClassicArtifact{
			URL: "http://127.0.0.1:1/app.tar.gz", SHA256: strings.Repeat("a", 64), Command: []string{"bin/app"}, Port: 8080,
		}},
	}
	g.Expect(suite.Client.Create(ctx, inst)).To(Succeed())
	return inst
}

func migrationRequestOf(ctx context.Context, inst *cafev1alpha1.ClassicInstance) string {
	got := &cafev1alpha1.ClassicInstance{}
	if suite.Client.Get(ctx, client.ObjectKeyFromObject(inst), got) != nil {
		return ""
	}
	return got.Annotations[cafev1alpha1.MigrationRequestedAnnotation]
}

func unhealthyHosts(ctx context.Context, g *WithT) map[string]cafev1alpha1.NodeVerdict {
	out := map[string]cafev1alpha1.NodeVerdict{}
	for _, rec := range readPolicy(ctx, g).Status.UnhealthyHosts {
		out[rec.Host] = rec.Verdict
	}
	return out
}

// Classic hosts are judged by the node rules (the fast policy of TestMain:
// Suspect on 1 bad signal, Failed on 2): a host CAFE cannot reach while
// its agent heartbeats (its link lost) is Suspect and cordoned, its
// instances left in place; a host whose heartbeats stop too is Failed, its
// ClassicSet instances asked to migrate; back, both are Healthy and
// schedulable again.
func TestClassicHostsAreJudgedByTheNodeSignals(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	zone := "hosts-" + ns
	var hosts []*hostAgent
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		hosts = append(hosts, startHost(t, ctx, g, zone+"-"+n, zone))
	}
	partitioned, dead, reported := hosts[0], hosts[1], hosts[3]
	onPartitioned := classicSetInstance(ctx, g, ns, "on-partitioned", partitioned.name)
	onDead := classicSetInstance(ctx, g, ns, "on-dead", dead.name)
	for _, h := range hosts {
		g.Eventually(func() hostView { return hostViewOf(ctx, h.name) }).Should(HaveField("Verdict", "Healthy"), h.name)
	}

	// A monitoring system's report about a host is its ExternalReport
	// signal.
	r := &cafev1alpha1.NodeHealthReport{
		ObjectMeta: metav1.ObjectMeta{GenerateName: reported.name + "-"},
		Spec:       cafev1alpha1.NodeHealthReportSpec{HostName: reported.name, Source: "zabbix", Reason: "DiskLatency", Message: "p99 2 s"},
	}
	g.Expect(suite.Client.Create(ctx, r)).To(Succeed())
	g.Eventually(func() hostView { return hostViewOf(ctx, reported.name) }).Should(And(
		HaveField("Verdict", "Suspect"), HaveField("Cordoned", true),
		HaveField("Message", ContainSubstring("1 bad signal: ExternalReport: zabbix/DiskLatency"))))
	g.Expect(suite.Client.Delete(ctx, r)).To(Succeed())
	g.Eventually(func() hostView { return hostViewOf(ctx, reported.name) }).Should(And(HaveField("Verdict", "Healthy"), HaveField("Cordoned", false)))

	partitioned.down()
	g.Eventually(func() hostView { return hostViewOf(ctx, partitioned.name) }).Should(And(
		HaveField("Verdict", "Suspect"), HaveField("Cordoned", true),
		HaveField("Message", And(ContainSubstring("1 bad signal: KubeletProbe: Reachable=False (HostUnreachable)"), Not(ContainSubstring("Lease"))))))
	g.Consistently(func() string { return migrationRequestOf(ctx, onPartitioned) }, 3*time.Second).Should(BeEmpty(), "a Suspect host's instances stay")

	dead.alive <- false
	dead.down()
	g.Eventually(func() hostView { return hostViewOf(ctx, dead.name) }).Should(And(
		HaveField("Verdict", "Failed"), HaveField("Cordoned", true),
		HaveField("Message", And(ContainSubstring("Lease: Lease last renewed"), ContainSubstring("KubeletProbe: Reachable=False")))))
	g.Eventually(func() []string { return strings.Fields(migrationRequestOf(ctx, onDead)) }).Should(
		And(HaveLen(5), HaveExactElements("nodelifecycle", Not(BeEmpty()), "host", dead.name, "Failed")))
	// The policy's status is written after the hosts in the same pass.
	g.Eventually(func() map[string]cafev1alpha1.NodeVerdict { return unhealthyHosts(ctx, g) }).Should(
		And(HaveKeyWithValue(dead.name, cafev1alpha1.NodeVerdictFailed), HaveKeyWithValue(partitioned.name, cafev1alpha1.NodeVerdictSuspect)))
	g.Expect(hostViewOf(ctx, hosts[2].name)).To(HaveField("Verdict", "Healthy"), "the other hosts of the zone are untouched")
	g.Expect(migrationRequestOf(ctx, onPartitioned)).To(BeEmpty())

	for _, h := range []*hostAgent{partitioned, dead} {
		h.alive <- true
		host := &cafev1alpha1.ClassicHost{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: h.name}, host)).To(Succeed())
		h.serve(ctx, g, host)
		g.Eventually(func() hostView { return hostViewOf(ctx, h.name) }).Should(And(HaveField("Verdict", "Healthy"), HaveField("Cordoned", false)), h.name)
	}
	g.Eventually(func() map[string]cafev1alpha1.NodeVerdict { return unhealthyHosts(ctx, g) }).ShouldNot(Or(HaveKey(dead.name), HaveKey(partitioned.name)))
}
