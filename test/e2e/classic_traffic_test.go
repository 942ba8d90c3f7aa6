package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/internal/devenv"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/test/framework"
)

// One Service, pods and a VM: a classic instance labelled like the app's
// pods, on a classic host in its own network namespace, is listed in
// CAFE's EndpointSlices of the app's Service, and the real gateway
// (Traefik, which reads EndpointSlices) sends it its share of the requests
// beside the pods. Its host losing its link takes it out of traffic until
// the link is back. Deleted, it leaves the gateway's servers.
func TestClassicHybridServiceServesPodsAndClassicInstancesAlike(t *testing.T) {
	ctx := testContext(t)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(time.Minute)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	g.Expect(env.ClassicHosts).NotTo(BeEmpty(), "the shared control plane runs classic hosts")
	g.Expect(env.DemoApp).NotTo(BeNil(), "and the demo app's artifact store")
	host := env.ClassicHosts[len(env.ClassicHosts)-1]
	g.Expect(host.Network).NotTo(BeNil(), "the host has a network namespace of its own")

	a := newTrafficApp(ctx, t, g, "hybrid")
	a.runCafeDeployment(ctx, g, cafev1alpha1.PodSetTypeInPlaceSet)

	vm := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "hybrid-vm-1", Labels: a.labels},
		Spec:       cafev1alpha1.ClassicInstanceSpec{HostName: host.Name, Artifact: *env.DemoApp.Artifact("v1", trafficPort)},
	}
	g.Expect(k8sClient.Create(ctx, vm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(vm), vm)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(vm.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition)).To(BeTrue(), "instance status %+v", vm.Status)
	}).Should(Succeed())
	vmServer := netip.AddrPortFrom(netip.MustParseAddr(host.Address), trafficPort)
	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeTrue(), "the gateway lists the VM beside the pods")

	// Requests through the gateway are answered by pods and by the VM,
	// all at v1, none failed.
	answeredBy := map[string]int{}
	for range 13 * 20 {
		pod, version, status := askGateway(ctx, g, a.host)
		g.Expect(status).To(Equal(http.StatusOK))
		g.Expect(version).To(Equal("v1"))
		answeredBy[pod]++
	}
	g.Expect(answeredBy).To(HaveKey(vm.Name), "the VM answers its share")
	g.Expect(len(answeredBy)).To(BeNumerically(">", 1), "and the pods theirs")

	// The host's network fails (its namespace loses its link): CAFE cannot
	// reach it at its address, the host turns not Ready (HostUnreachable)
	// though its agent still heartbeats, and its instance leaves the
	// gateway; the pods answer everything. The node lifecycle judges the
	// host by its signals as it judges nodes: one bad signal (the probe of
	// its agent; its Lease stays fresh) makes it Suspect and cordoned. The
	// link back, it returns, and is Healthy and schedulable again after the
	// policy's recovery time (shortened here).
	patchPolicy(t, ctx, g, func(s *cafev1alpha1.NodeLifecyclePolicySpec) { s.RecoverySeconds = 5 })
	g.Expect(env.SetClassicHostLink(ctx, host.Name, false)).To(Succeed())
	t.Cleanup(func() { _ = env.SetClassicHostLink(context.Background(), host.Name, true) })
	g.Eventually(hostReadiness(ctx, g, host.Name)).Should(Equal(string(metav1.ConditionFalse) + "/" + cafev1alpha1.ClassicHostReasonUnreachable))
	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeFalse(), "the unreachable host's instance leaves the gateway")
	for range 50 {
		pod, _, status := askGateway(ctx, g, a.host)
		g.Expect(status).To(Equal(http.StatusOK))
		g.Expect(pod).NotTo(Equal(vm.Name))
	}
	g.Eventually(hostVerdict(ctx, g, host.Name)).Should(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", string(cafev1alpha1.NodeVerdictSuspect)),
		HaveField("Message", And(ContainSubstring("KubeletProbe: Reachable=False (HostUnreachable)"), Not(ContainSubstring("Lease:"))))))
	g.Expect(hostCordoned(ctx, g, host.Name)).To(BeTrue(), "a Suspect host is cordoned")
	g.Expect(env.SetClassicHostLink(ctx, host.Name, true)).To(Succeed())
	g.Eventually(hostReadiness(ctx, g, host.Name)).Should(Equal(string(metav1.ConditionTrue) + "/" + cafev1alpha1.ClassicHostReasonHeartbeating))
	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeTrue(), "back with its link")
	g.Eventually(hostVerdict(ctx, g, host.Name)).Should(HaveField("Reason", string(cafev1alpha1.NodeVerdictHealthy)))
	g.Expect(hostCordoned(ctx, g, host.Name)).To(BeFalse())

	g.Expect(k8sClient.Delete(ctx, vm)).To(Succeed())
	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeFalse(), "a deleted instance leaves the gateway")
}

// hostReadiness is "<status>/<reason>" of the host's Ready condition.
func hostReadiness(ctx context.Context, g Gomega, name string) func() string {
	return func() string {
		h := &cafev1alpha1.ClassicHost{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, h)).To(Succeed())
		c := meta.FindStatusCondition(h.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition)
		if c == nil {
			return ""
		}
		return string(c.Status) + "/" + c.Reason
	}
}

// hostVerdict is the host's Healthy condition: CAFE's node lifecycle
// verdict on it.
func hostVerdict(ctx context.Context, g Gomega, name string) func() metav1.Condition {
	return func() metav1.Condition {
		h := &cafev1alpha1.ClassicHost{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, h)).To(Succeed())
		if c := meta.FindStatusCondition(h.Status.Conditions, cafev1alpha1.ClassicHostHealthyCondition); c != nil {
			return *c
		}
		return metav1.Condition{}
	}
}

// hostCordoned: CAFE's verdict keeps new instances off the host.
func hostCordoned(ctx context.Context, g Gomega, name string) bool {
	h := &cafev1alpha1.ClassicHost{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, h)).To(Succeed())
	return meta.IsStatusConditionFalse(h.Status.Conditions, cafev1alpha1.ClassicHostSchedulableCondition)
}

// gatewayServes says whether Traefik lists server among its backends;
// every backend must be in one of the control plane's networks.
func gatewayServes(ctx context.Context, g Gomega, server netip.AddrPort) func() bool {
	traefik, err := gateway.NewTraefik(env.ControlPlane.GatewayAdminURL())
	g.Expect(err).NotTo(HaveOccurred())
	return func() bool {
		servers, err := traefik.Backends(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		found := false
		for _, s := range servers {
			expectInProjectNetwork(ctx, g, s.Addr())
			found = found || s == server
		}
		return found
	}
}

// askGateway sends one request for host through the gateway and returns
// who answered, at which version, and the status.
func askGateway(ctx context.Context, g Gomega, host string) (pod, version string, status int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.ControlPlane.GatewayURL()+"/", nil)
	g.Expect(err).NotTo(HaveOccurred())
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred(), fmt.Sprintf("GET %s through the gateway", host))
	defer resp.Body.Close()
	return resp.Header.Get(appanswer.PodHeader), resp.Header.Get(appanswer.VersionHeader), resp.StatusCode
}

// One CafeDeployment, pods and a VM, one release: zone-a and zone-b run
// pods (InPlaceSets), zone-c runs a classic instance of the demo app's
// package on the zone's classic host (a ClassicSet). Changing the image and
// the package together is one revision, released in the same groups under
// the same water level: under load through the real gateway no request
// fails, the VM answers its share before and after, and ends on v2 like
// the pods.
func TestClassicUnitsReleaseWithThePodsUnderLoad(t *testing.T) {
	ctx, g := classicTest(t)
	host := classicHostIn(g, "zone-c")

	a := newTrafficApp(ctx, t, g, "mixed")
	a.pods = trafficReplicas - 1
	cd := a.cafeDeployment(cafev1alpha1.PodSetTypeInPlaceSet)
	cd.Spec.Topology.UnitReplicas = map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(6), "zone-b": intstr.FromInt32(5), "zone-c": intstr.FromInt32(1)}
	cd.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: []string{"zone-c"}, Artifact: *env.DemoApp.Artifact("v1", trafficPort)}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	waitForRelease(ctx, g, cd, releaseCompleted)
	a.waitServed(ctx, g, "v1")
	vm := classicInstancesOf(ctx, g, a)
	g.Expect(vm).To(HaveLen(1))
	g.Expect(vm[0].Spec.HostName).To(Equal(host.Name), "the classic unit's instance runs on the zone's host")
	vmServer := netip.AddrPortFrom(netip.MustParseAddr(host.Address), trafficPort)
	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeTrue(), "the gateway lists the VM beside the pods")

	r := a.releaseUnderLoad(ctx, t, g,
		func() {
			g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
				c.Spec.Template.Spec.Containers[0].Image = a.image("v2")
				c.Spec.Classic.Artifact = *env.DemoApp.Artifact("v2", trafficPort)
			})).To(Succeed())
		},
		func() { waitForRelease(ctx, g, cd, releaseCompleted) })
	expectEveryRequestServed(g, r)
	g.Expect(r.Total.Pods).To(HaveKey(vm[0].Name), "the VM answered its share during the release")

	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeTrue(), "the VM is back in the gateway on v2")
	expectVM(ctx, g, a, vm[0].Name, "v2")
}

// classicTest is a classic e2e test's context and assertions: eventual
// conditions polled every 200 ms for up to two minutes.
func classicTest(t *testing.T) (context.Context, *WithT) {
	return testContext(t), classicGomega(t)
}

// classicGomega waits as long as classic instances take: packages
// fetched, processes started, health checks passed.
func classicGomega(t *testing.T) *WithT {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(2 * time.Minute)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	return g
}

// classicHostIn is the shared control plane's classic host of zone, in a
// network namespace of its own.
func classicHostIn(g Gomega, zone string) devenv.ClassicHost {
	for _, h := range env.ClassicHosts {
		if h.Zone == zone {
			g.Expect(h.Network).NotTo(BeNil(), "host %s has a network namespace of its own", h.Name)
			return h
		}
	}
	g.Expect(zone).To(BeEmpty(), "the shared control plane runs a classic host in %s", zone)
	return devenv.ClassicHost{}
}

// classicInstancesOf lists the app's classic instances.
func classicInstancesOf(ctx context.Context, g Gomega, a *trafficApp) []cafev1alpha1.ClassicInstance {
	list := &cafev1alpha1.ClassicInstanceList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(a.ns), client.MatchingLabels(a.labels))).To(Succeed())
	return list.Items
}

// The scenario of issue 15 north-south: a hybrid app (pods in zone-a and
// zone-b, a classic instance in zone-c) released v1 → v2 by one ReleaseOrder
// with an approval, under load through the real gateway: no request fails,
// the VM answers during the release and ends on v2 beside the pods; the
// order's rollback returns both to v1, losslessly too.
func TestClassicHybridAppReleasedByAnOrderUnderLoad(t *testing.T) {
	g := classicGomega(t)
	// A release and its rollback, each under two loads, and a consumer
	// app placed, fetched and started: about 100 s alone, more beside the
	// other tests; 3 minutes leaves too little margin.
	ctx := testContextWithin(t, 8*time.Minute)
	a, app, vm := runHybridApp(ctx, t, g, "hyb")
	ns := a.ns

	// East-west: pods and the VM are registered in the shared registry,
	// and a consumer app calls them through it.
	reg := registryClient(t, g)
	svc := registry.Service{Namespace: ns, Name: a.name}
	g.Eventually(func(g Gomega) map[string]string { return registered(ctx, g, reg, svc) }).Should(And(
		HaveLen(trafficReplicas), HaveKeyWithValue(vm, registry.KindClassicInstance)), "every pod and the VM are registered")
	g.Eventually(func(g Gomega) {
		g.Expect(classicInstancesOf(ctx, g, a)[0].Finalizers).To(ContainElement(registryFinalizer))
		for _, p := range listPods(ctx, g, ns, a.labels) {
			g.Expect(p.Finalizers).To(ContainElement(registryFinalizer), "pod %s", p.Name)
		}
	}).Should(Succeed(), "the registry provider guards pods and VM")
	c := startConsumer(ctx, t, g, a)
	c.expectAcknowledging(ctx, g, reg)

	// r2: the image and the package together.
	recordHybridR2(ctx, g, a, app, env.DemoApp.Artifact("v2", trafficPort))
	operate := approvedOrder(ctx, t, g, a, "hybrid-v2")
	finished := func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() }
	ew := c.startLoad(ctx, t, g)
	drain := watchEastWestDrain(ctx, g, a, c, reg)
	r := a.releaseUnderLoad(ctx, t, g,
		func() { operate("start") },
		func() {
			o := waitForOrder(ctx, g, ns, "hybrid-v2", finished)
			g.Expect(o.Status.Phase).To(Equal(cafev1alpha1.OrderSucceeded), "%s %+v", o.Status.Message, o.Status.Apps)
		})
	expectEveryRequestServed(g, r)
	g.Expect(r.Total.Pods).To(HaveKey(vm), "the VM answered its share during the release")
	expectVM(ctx, g, a, vm, "v2")
	ew.waitSecond(ctx, g, "an east-west second answered only by v2", servedOnlyBy("v2"))
	drain.finish(g, vm)
	expectEastWestServed(t, g, ew, vm, "v1", "v2")
	expectInstancesAudited(ctx, g, ns, "hybrid-v2", a.name+"-r2", vm)

	// The order's rollback returns pods and VM to v1, under load too.
	ew = c.startLoad(ctx, t, g)
	drain = watchEastWestDrain(ctx, g, a, c, reg)
	r = a.releaseUnderLoadTo(ctx, t, g, "v1", "v2",
		func() { operate("rollback", "--comment", "back") },
		func() {
			o := waitForOrder(ctx, g, ns, "hybrid-v2", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase == cafev1alpha1.OrderRolledBack })
			g.Expect(o.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack))
		})
	expectEveryRequestServed(g, r)
	expectVM(ctx, g, a, vm, "v1")
	ew.waitSecond(ctx, g, "an east-west second answered only by v1", servedOnlyBy("v1"))
	drain.finish(g, vm)
	expectEastWestServed(t, g, ew, vm, "v2", "v1")
	expectInstancesAudited(ctx, g, ns, "hybrid-v2", a.name+"-r1", vm)
}

// expectEastWestServed: the consumer's calls all succeeded, every second
// had answers, began on from and ended on to, and reached the VM too.
func expectEastWestServed(t *testing.T, g Gomega, l *load, vm, from, to string) {
	r := l.finish(t, g)
	expectEveryRequestServed(g, r)
	g.Expect(r.Total.Versions).To(And(HaveKey(from), HaveKey(to)), "the east-west run spans the release")
	g.Expect(r.Total.Pods).To(HaveKey(vm), "east-west calls reached the VM through the registry")
}

// expectInstancesAudited: the order's audit trail lists the app's pods and
// its classic instance on rev.
func expectInstancesAudited(ctx context.Context, g Gomega, ns, order, rev, vm string) {
	o := waitForOrder(ctx, g, ns, order, func(*cafev1alpha1.ReleaseOrder) bool { return true })
	var listed []string
	for _, e := range o.Status.Audit {
		if e.Action == "Instances" && e.After == rev {
			listed = append(listed, e.Reason)
		}
	}
	g.Expect(listed).To(ContainElement(And(
		ContainSubstring(fmt.Sprintf("%d pods", trafficReplicas-1)),
		ContainSubstring("classic instance "+vm+" ("+rev+" on "),
	)), "the audit trail lists both kinds of instance on %s", rev)
}

// runHybridApp publishes r1 of a hybrid app name (12 replicas: pods in
// zone-a and zone-b, one classic instance on zone-c's host) behind a route
// of the gateway, and returns once the gateway serves all of them at v1,
// with the instance's name.
func runHybridApp(ctx context.Context, t *testing.T, g Gomega, name string) (*trafficApp, *cafev1alpha1.CafeAppService, string) {
	t.Helper()
	host := classicHostIn(g, "zone-c")
	ns := framework.CreateNamespace(t, k8sClient)
	a := &trafficApp{ns: ns, name: name, host: name + "." + ns + ".example", labels: map[string]string{cafev1alpha1.AppLabel: name}, pods: trafficReplicas - 1}
	g.Expect(k8sClient.Create(ctx, a.route())).To(Succeed())
	template := a.template("v1")
	template.Labels = map[string]string{"tier": name}
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: template,
			Service: cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80, TargetPort: trafficPort}},
				PublishInRegistry: true},
			ClassicArtifact: env.DemoApp.Artifact("v1", trafficPort),
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To[int32](trafficReplicas),
				Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"},
					UnitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(6), "zone-b": intstr.FromInt32(5), "zone-c": intstr.FromInt32(1)}},
				ClassicUnits: []string{"zone-c"},
				Strategy: cafev1alpha1.CafeDeploymentStrategy{UpgradeType: cafev1alpha1.UpgradeTypeBatch, BatchSize: ptr.To(intstr.FromInt32(4)),
					MinAvailable: ptr.To(intstr.FromInt32(10)), MinReadySeconds: 1},
			},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	waitForApp(ctx, g, app, latestIs(name+"-r1"))
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = name + "-r1" })).To(Succeed())
	releasedRevision(ctx, g, app, name+"-r1")
	a.waitServed(ctx, g, "v1")
	vmServer := netip.AddrPortFrom(netip.MustParseAddr(host.Address), trafficPort)
	g.Eventually(gatewayServes(ctx, g, vmServer)).Should(BeTrue(), "the gateway lists the VM beside the pods")
	vm := classicInstancesOf(ctx, g, a)
	g.Expect(vm).To(HaveLen(1))
	g.Expect(vm[0].Spec.HostName).To(Equal(host.Name))
	return a, app, vm[0].Name
}

// recordHybridR2 records r2 of the hybrid app: image v2 and artifact
// together, one revision.
func recordHybridR2(ctx context.Context, g Gomega, a *trafficApp, app *cafev1alpha1.CafeAppService, artifact *cafev1alpha1.ClassicArtifact) {
	g.Expect(editApp(ctx, app, func(x *cafev1alpha1.CafeAppService) {
		x.Spec.Template.Spec.Containers[0].Image = a.image("v2")
		x.Spec.ClassicArtifact = artifact
	})).To(Succeed())
	waitForApp(ctx, g, app, latestIs(a.name+"-r2"))
}

// approvedOrder has alice request an order releasing r2 of the app (with
// args), bob approve it, and returns how oscar, the operator, acts on it
// (`cafe release <verb> <order> --no-wait <args>`).
func approvedOrder(ctx context.Context, t *testing.T, g Gomega, a *trafficApp, order string, args ...string) (operate func(verb string, args ...string)) {
	alice, _ := releaseUser(t, ctx, a.ns, "alice", "requester")
	bob, _ := releaseUser(t, ctx, a.ns, "bob", "approver")
	oscar, _ := releaseUser(t, ctx, a.ns, "oscar", "operator")
	cli := func(user string, args ...string) {
		out, err := cafeCLI(ctx, t, a.ns, user, args...)
		g.Expect(err).NotTo(HaveOccurred(), out)
	}
	cli(alice, append([]string{"release", "create", order, "--title", order, "--app", a.name + "=r2", "--approvals", "1"}, args...)...)
	cli(bob, "release", "approve", order, "--no-wait")
	waitForOrder(ctx, g, a.ns, order, phaseIs(cafev1alpha1.OrderApproved))
	return func(verb string, args ...string) {
		cli(oscar, append([]string{"release", verb, order, "--no-wait"}, args...)...)
	}
}

// A revision whose package does not match its checksum: the instance
// fails with that reason (its old process left running, out of traffic),
// the release makes no progress, and the order's failure policy
// (RollbackAll) returns the app to r1: the instance runs v1 again and
// serves, and no request fails throughout.
func TestClassicChecksumMismatchRollsTheOrderBack(t *testing.T) {
	ctx, g := classicTest(t)
	a, app, vm := runHybridApp(ctx, t, g, "bad")
	ns, name := a.ns, a.name

	forged := env.DemoApp.Artifact("v2", trafficPort)
	forged.SHA256 = env.DemoApp.Artifact("v1", trafficPort).SHA256[:60] + "0000"
	recordHybridR2(ctx, g, a, app, forged)
	operate := approvedOrder(ctx, t, g, a, "forged", "--failure-policy", "RollbackAll", "--progress-deadline", "20s")

	l := a.startLoad(ctx, t, g)
	operate("start")
	g.Eventually(func(g Gomega) {
		inst := &cafev1alpha1.ClassicInstance{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: vm}, inst)).To(Succeed())
		c := meta.FindStatusCondition(inst.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.ClassicInstanceReasonChecksumMismatch))
		g.Expect(c.Message).To(ContainSubstring(forged.SHA256))
		g.Expect(inst.Status.Process).NotTo(BeNil())
		g.Expect(inst.Status.Process.SHA256).To(Equal(env.DemoApp.Artifact("v1", trafficPort).SHA256), "the old process is left running")
		g.Expect(inst.Spec.TrafficGate).To(Equal(cafev1alpha1.ClassicTrafficGateDrainForUpdate), "and out of traffic")
	}).Should(Succeed())
	final := waitForOrder(ctx, g, ns, "forged", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack), "%s %+v", final.Status.Message, final.Status.Apps)
	releasedRevision(ctx, g, app, name+"-r1")
	a.waitServed(ctx, g, "v1")
	l.waitSecond(ctx, g, "a second answered only by v1", servedOnlyBy("v1"))
	expectVM(ctx, g, a, vm, "v1")
	r := l.finish(t, g)
	expectEveryRequestServed(g, r)
}

// expectVM: the app's one classic instance is still name (updated in
// place), runs version's package, and answers version through the gateway.
func expectVM(ctx context.Context, g Gomega, a *trafficApp, name, version string) {
	after := classicInstancesOf(ctx, g, a)
	g.Expect(after).To(HaveLen(1))
	g.Expect(after[0].Name).To(Equal(name), "the instance was updated in place, not replaced")
	g.Expect(after[0].Spec.Artifact.SHA256).To(Equal(env.DemoApp.Artifact(version, trafficPort).SHA256))
	g.Eventually(func() string {
		for range 40 {
			if pod, v, _ := askGateway(ctx, g, a.host); pod == name {
				return v
			}
		}
		return ""
	}).Should(Equal(version))
}

// The agent of the classic unit's host is SIGKILLed as a release begins:
// CAFE no longer reaches the host (its agent answers the probe), so the host
// turns not Ready and its instance leaves traffic and is not counted
// available; the release moves the pods within the water level and waits
// for the VM. Restarted, the agent adopts the running process, replaces it
// with the new package, and the release completes: no request fails
// throughout.
func TestClassicAgentKilledMidRelease(t *testing.T) {
	ctx, g := classicTest(t)
	a, app, vm := runHybridApp(ctx, t, g, "kill")
	host := classicHostIn(g, "zone-c")
	recordHybridR2(ctx, g, a, app, env.DemoApp.Artifact("v2", trafficPort))

	l := a.startLoad(ctx, t, g)
	agent := devenv.AgentComponent(host.Name)
	g.Expect(env.ControlPlane.Kill(agent)).To(Succeed())
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.ControlPlane.Restart(context.Background(), agent)
		}
	})
	g.Eventually(hostReadiness(ctx, g, host.Name)).Should(Equal(string(metav1.ConditionFalse) + "/" + cafev1alpha1.ClassicHostReasonUnreachable))
	g.Expect(editApp(ctx, app, func(x *cafev1alpha1.CafeAppService) { x.Spec.PublishedRevision = a.name + "-r2" })).To(Succeed())

	set := &cafev1alpha1.ClassicSet{}
	setKey := client.ObjectKey{Namespace: a.ns, Name: a.name + "-zone-c"}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, setKey, set)).To(Succeed())
		g.Expect(set.Status.AvailableReplicas).To(BeZero(), "the instance of an unreachable host is not available")
		inst := &cafev1alpha1.ClassicInstance{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: vm}, inst)).To(Succeed())
		g.Expect(inst.Spec.Artifact.SHA256).To(Equal(env.DemoApp.Artifact("v2", trafficPort).SHA256), "its package is changed (it serves nobody)")
	}).Should(Succeed())
	g.Eventually(func() int {
		n := 0
		for _, p := range listPods(ctx, g, a.ns, a.labels) {
			if p.Spec.Containers[0].Image == a.image("v2") {
				n++
			}
		}
		return n
	}).Should(BeNumerically(">", 0), "the pods' release goes on meanwhile")
	g.Consistently(func() cafev1alpha1.ReleaseOutcome { return outcomeOf(ctx, g, a, a.name+"-r2") }, 5*time.Second).
		ShouldNot(Equal(cafev1alpha1.ReleaseOutcomeSucceeded), "the release waits for the VM")

	g.Expect(env.ControlPlane.Restart(ctx, agent)).To(Succeed())
	restarted = true
	releasedRevision(ctx, g, app, a.name+"-r2")
	a.waitServed(ctx, g, "v2")
	l.waitSecond(ctx, g, "a second answered only by v2", servedOnlyBy("v2"))
	expectVM(ctx, g, a, vm, "v2")
	expectEveryRequestServed(g, l.finish(t, g))
}

// outcomeOf is the outcome the app records for revision rev.
func outcomeOf(ctx context.Context, g Gomega, a *trafficApp, rev string) cafev1alpha1.ReleaseOutcome {
	r := &cafev1alpha1.AppRevision{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: rev}, r)).To(Succeed())
	return r.Status.Outcome
}
