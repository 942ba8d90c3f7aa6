package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	registryprovider "github.com/cafe-io/cafe/internal/traffic/registry"
	"github.com/cafe-io/cafe/test/framework"
)

// The traffic tests send real HTTP requests through the control plane's
// gateway (Traefik, Gateway API) to the simulated pods, whose containers the
// pod emulator plays (EMULATION: kwok runs no process), during releases.
const (
	trafficReplicas = 12
	trafficRate     = 200
	trafficPort     = 8080
)

var gatewayFinalizer = cafev1alpha1.TrafficFinalizer(gateway.Name)

// registryFinalizer is the registry provider's finalizer.
var registryFinalizer = cafev1alpha1.TrafficFinalizer(registryprovider.Name)

// trafficApp is an app behind Service <name> (port 80 → 8080) and an
// HTTPRoute of the control plane's Gateway for host <name>.<ns>.example.
type trafficApp struct {
	ns, name, host string
	labels         map[string]string
	// pods is how many of the app's replicas are pods (the others run on
	// classic hosts).
	pods int
}

func newTrafficApp(ctx context.Context, t *testing.T, g Gomega, name string) *trafficApp {
	t.Helper()
	a := newRoutedApp(ctx, t, g, name)
	svc := service(a.ns, name, a.labels)
	svc.Spec.Ports[0].TargetPort = intstr.FromInt32(trafficPort)
	g.Expect(k8sClient.Create(ctx, svc)).To(Succeed())
	return a
}

// newRoutedApp is a trafficApp in a new namespace whose HTTPRoute exists
// and whose Service does not yet (a CafeAppService makes its own).
func newRoutedApp(ctx context.Context, t *testing.T, g Gomega, name string) *trafficApp {
	t.Helper()
	ns := framework.CreateNamespace(t, k8sClient)
	a := &trafficApp{ns: ns, name: name, host: name + "." + ns + ".example", labels: map[string]string{"app": name}, pods: trafficReplicas}
	g.Expect(k8sClient.Create(ctx, a.route())).To(Succeed())
	return a
}

func (a *trafficApp) route() *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Namespace: ptr.To(gatewayv1.Namespace(controlplane.GatewayNamespace)),
				Name:      gatewayv1.ObjectName(controlplane.GatewayName),
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(a.host)},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(a.name), Port: ptr.To(gatewayv1.PortNumber(80))},
			}}}}},
		},
	}
}

func (a *trafficApp) image(version string) string { return "example.com/" + a.name + ":" + version }

// template runs the app's container at version, declaring the port the
// pod emulator answers on.
func (a *trafficApp) template(version string) corev1.PodTemplateSpec {
	t := appTemplate(a.labels)
	t.Spec.Containers[0].Image = a.image(version)
	t.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: trafficPort}}
	return t
}

// cafeDeployment releases 12 pods over three zones in three groups of 4,
// never fewer than 10 available, each updated pod available for a second
// before the next is taken.
func (a *trafficApp) cafeDeployment(kind cafev1alpha1.PodSetType) *cafev1alpha1.CafeDeployment {
	cd := cafeDeployment(a.ns, a.name, trafficReplicas, a.labels)
	cd.Spec.Template = a.template("v1")
	cd.Spec.PodSetType = kind
	cd.Spec.Strategy = trafficStrategy()
	return cd
}

// trafficStrategy: groups of 4, never fewer than 10 of 12 available, each
// updated pod available for a second before the next is taken.
func trafficStrategy() cafev1alpha1.CafeDeploymentStrategy {
	return cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:     cafev1alpha1.UpgradeTypeBatch,
		BatchSize:       ptr.To(intstr.FromInt32(4)),
		MinAvailable:    ptr.To(intstr.FromInt32(10)),
		MinReadySeconds: 1,
	}
}

// runCafeDeployment creates the CafeDeployment and waits until the gateway
// serves its 12 pods at v1.
func (a *trafficApp) runCafeDeployment(ctx context.Context, g Gomega, kind cafev1alpha1.PodSetType) *cafev1alpha1.CafeDeployment {
	cd := a.cafeDeployment(kind)
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	waitForRelease(ctx, g, cd, releaseCompleted)
	a.waitServed(ctx, g, "v1")
	return cd
}

// waitServed waits until the gateway's own API lists exactly the app's pods
// that run version, all a.pods of them, as servers (it is polled: Traefik's API
// has no watch). Every server the gateway has, of any route, must be in the
// pod network, which is routed into the control plane's own network
// namespace (the network rule: nothing is ever sent elsewhere).
func (a *trafficApp) waitServed(ctx context.Context, g Gomega, version string) {
	traefik, err := gateway.NewTraefik(env.ControlPlane.GatewayAdminURL())
	g.Expect(err).NotTo(HaveOccurred())
	var last string
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		pods := listPods(ctx, g, a.ns, a.labels)
		want, all := map[netip.AddrPort]bool{}, map[netip.Addr]bool{}
		for _, p := range pods {
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil {
				continue
			}
			all[ip] = true
			if p.DeletionTimestamp == nil && podReady(p) && p.Spec.Containers[0].Image == a.image(version) {
				want[netip.AddrPortFrom(ip, trafficPort)] = true
			}
		}
		servers, err := traefik.Backends(ctx)
		g.Expect(err).NotTo(HaveOccurred(), "asking Traefik for its servers")
		listed := 0
		for _, s := range servers {
			expectInProjectNetwork(ctx, g, s.Addr())
			switch {
			case want[s]:
				listed++
			case all[s.Addr()]:
				listed = -a.pods // one of the app's other pods is still served
			}
		}
		if len(want) == a.pods && listed == a.pods {
			return
		}
		last = fmt.Sprintf("%d of the app's pods run %s and are Ready, the gateway serves %d of them (negative: it still serves other pods of the app)", len(want), version, listed)
		select {
		case <-ctx.Done():
			g.Expect(ctx.Err()).NotTo(HaveOccurred(), "waiting for the gateway to serve %s/%s at %s: %s", a.ns, a.name, version, last)
		case <-tick.C:
		}
	}
}

// expectInProjectNetwork fails unless addr is routed into one of the
// control plane's own network namespaces: the pod network, or a classic
// host's (the network rule: nothing is ever sent elsewhere).
func expectInProjectNetwork(ctx context.Context, g Gomega, addr netip.Addr) {
	networks := []*podnet.Network{env.ControlPlane.PodNetwork()}
	for _, h := range env.ClassicHosts {
		networks = append(networks, h.Network)
	}
	for _, n := range networks {
		if n != nil && n.CIDR.Contains(addr) {
			g.Expect(n.CheckRoute(ctx, addr)).To(Succeed(), "the gateway's server %s is not routed into network namespace %s", addr, n.Namespace)
			return
		}
	}
	g.Expect(addr).To(BeNil(), "the gateway was handed %s, in none of the control plane's networks", addr)
}

// load is a run of the load generator through the gateway to an app,
// started by startLoad and ended by stop.
type load struct {
	what    string
	cancel  context.CancelFunc
	done    chan struct{}
	seconds chan loadgen.Second
	report  *loadgen.Report
	err     error
}

// startLoad sends trafficRate requests/s for the app's host through the
// gateway until stop, and returns once a first second was fully served.
func (a *trafficApp) startLoad(ctx context.Context, t *testing.T, g Gomega) *load {
	t.Helper()
	return startLoadAt(ctx, t, g, "the gateway", loadgen.Config{URL: env.ControlPlane.GatewayURL() + "/", Host: a.host, Rate: trafficRate})
}

// startLoadAt runs the load generator with cfg until stop, and returns
// once a first second was fully served; what names the target in logs.
func startLoadAt(ctx context.Context, t *testing.T, g Gomega, what string, cfg loadgen.Config) *load {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	l := &load{what: what, cancel: cancel, done: make(chan struct{}), seconds: make(chan loadgen.Second, 4096)}
	cfg.OnSecond = func(s loadgen.Second) {
		select {
		case l.seconds <- s:
		default:
		}
	}
	go func() {
		defer close(l.done)
		l.report, l.err = loadgen.Run(runCtx, cfg)
	}()
	t.Cleanup(func() { l.stop() })
	l.waitSecond(ctx, g, "a first second fully served", loadgen.Second.Served)
	return l
}

// waitSecond consumes the load's seconds until one satisfies ok.
func (l *load) waitSecond(ctx context.Context, g Gomega, what string, ok func(loadgen.Second) bool) loadgen.Second {
	for {
		select {
		case s := <-l.seconds:
			if ok(s) {
				return s
			}
		case <-l.done:
			g.Expect(l.err).NotTo(HaveOccurred(), "the load run ended before %s", what)
			g.Expect(false).To(BeTrue(), "the load run ended before %s", what)
		case <-ctx.Done():
			g.Expect(ctx.Err()).NotTo(HaveOccurred(), "waiting for %s", what)
		}
	}
}

// servedOnlyBy: a second fully served, every answer from version.
func servedOnlyBy(version string) func(loadgen.Second) bool {
	return func(s loadgen.Second) bool { return s.Served() && s.Versions[version] == s.OK }
}

// stop ends the run and returns its report.
func (l *load) stop() *loadgen.Report {
	l.cancel()
	<-l.done
	return l.report
}

func (l *load) finish(t *testing.T, g Gomega) *loadgen.Report {
	t.Helper()
	r := l.stop()
	g.Expect(l.err).NotTo(HaveOccurred())
	g.Expect(r).NotTo(BeNil())
	t.Logf("load through %s: %s over %d s; versions %v; p99 %v; max lag %v", l.what, loadgen.FormatCounts(r.Total.Counts), r.Total.Seconds, r.Total.Versions, r.Total.Latency.P99, r.MaxLag)
	return r
}

// releaseUnderLoad releases v2 while the load runs, and returns the report
// of a run that began with v1 answering and ended with only v2 answering.
func (a *trafficApp) releaseUnderLoad(ctx context.Context, t *testing.T, g Gomega, release func(), done func()) *loadgen.Report {
	return a.releaseUnderLoadTo(ctx, t, g, "v2", "v1", release, done)
}

// releaseUnderLoadTo is releaseUnderLoad from version from to version to.
func (a *trafficApp) releaseUnderLoadTo(ctx context.Context, t *testing.T, g Gomega, to, from string, release func(), done func()) *loadgen.Report {
	l := a.startLoad(ctx, t, g)
	release()
	done()
	a.waitServed(ctx, g, to)
	l.waitSecond(ctx, g, "a second answered only by "+to, servedOnlyBy(to))
	r := l.finish(t, g)
	g.Expect(r.Total.Versions).To(HaveKey(from), "the run began on "+from)
	g.Expect(r.Total.Versions).To(HaveKey(to), "the run ended on "+to)
	return r
}

// releaseCafeDeploymentUnderLoad releases the CafeDeployment from v1 to v2
// under load.
func (a *trafficApp) releaseCafeDeploymentUnderLoad(ctx context.Context, t *testing.T, g Gomega, cd *cafev1alpha1.CafeDeployment) *loadgen.Report {
	return a.releaseUnderLoad(ctx, t, g,
		func() { setImage(ctx, g, cd, a.image("v2")) },
		func() { waitForRelease(ctx, g, cd, releaseCompleted) })
}

// expectEveryRequestServed: no request failed and every second had answers.
func expectEveryRequestServed(g Gomega, r *loadgen.Report) {
	g.Expect(r.Total.Failed()).To(BeZero(), "failed requests: %s", loadgen.FormatCounts(r.Total.Counts))
	g.Expect(r.CheckEverySecondServed()).To(Succeed())
}

// expectGatewayGuards: every pod of the app carries the gateway provider's
// finalizer: the gateway will be asked before any of them is operated on.
func (a *trafficApp) expectGatewayGuards(ctx context.Context, g Gomega) {
	g.Expect(waitForPods(ctx, a.ns, a.labels, func(ps []*corev1.Pod) bool {
		return len(ps) == trafficReplicas && all(ps, func(p *corev1.Pod) bool { return slices.Contains(p.Finalizers, gatewayFinalizer) })
	})).To(Succeed(), "every pod behind the route carries %s", gatewayFinalizer)
}

// An InPlaceSet release of 12 pods over three zones, under 200 requests/s
// through the gateway, fails no request and serves every second; the pods
// are never operated on while the gateway or an EndpointSlice sends them
// traffic (watch-checked).
func TestTrafficInPlaceSetReleaseFailsNoRequest(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	a := newTrafficApp(ctx, t, g, "shop")
	rec := framework.Record(ctx, t, g, env.Admin, a.ns)
	cd := a.runCafeDeployment(ctx, g, cafev1alpha1.PodSetTypeInPlaceSet)
	a.expectGatewayGuards(ctx, g)
	before := identities(listPods(ctx, g, a.ns, a.labels))

	r := a.releaseCafeDeploymentUnderLoad(ctx, t, g, cd)
	expectEveryRequestServed(g, r)
	expectReleaseInvariants(ctx, t, g, rec, a.labels, 10, before, []string{a.image("v1"), a.image("v2")})
}

// The same release in ReplicaSet mode (new pods, old ones drained and
// deleted) fails no request either.
func TestTrafficReplicaSetModeReleaseFailsNoRequest(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	a := newTrafficApp(ctx, t, g, "cart")
	rec := framework.Record(ctx, t, g, env.Admin, a.ns)
	cd := a.runCafeDeployment(ctx, g, cafev1alpha1.PodSetTypeReplicaSet)
	a.expectGatewayGuards(ctx, g)

	r := a.releaseCafeDeploymentUnderLoad(ctx, t, g, cd)
	expectEveryRequestServed(g, r)
	framework.ExpectLossless(ctx, g, rec)
}

// A native Deployment's rolling update of the same app under the same load
// does fail requests: kwok deletes a pod at once, its emulated container
// stops, and the gateway still sends to it until it has seen the
// EndpointSlice change. This is what the measurement must be able to see.
func TestTrafficDeploymentRollingUpdateFailsRequests(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	a := newTrafficApp(ctx, t, g, "legacy")
	d := deployment(a.ns, a.name, a.labels, trafficReplicas, nil)
	d.Spec.Template = a.template("v1")
	g.Expect(k8sClient.Create(ctx, d)).To(Succeed())
	a.waitServed(ctx, g, "v1")

	r := a.releaseUnderLoad(ctx, t, g,
		func() {
			g.Expect(update(ctx, d, func(d *appsv1.Deployment) { d.Spec.Template = a.template("v2") })).To(Succeed())
		},
		func() { waitForDeploymentRollout(ctx, g, d) })
	g.Expect(r.Total.Failed()).To(BeNumerically(">", 0), "a Deployment's rolling update under load lost no request: the measurement cannot see failures")
}

// waitForDeploymentRollout waits until the Deployment's controller saw its
// spec and every replica is updated and available.
func waitForDeploymentRollout(ctx context.Context, g Gomega, d *appsv1.Deployment) {
	_, err := framework.WaitForObject(ctx, k8sClient, &appsv1.DeploymentList{}, d.Namespace, d.Name, func(d *appsv1.Deployment) bool {
		want := ptr.Deref(d.Spec.Replicas, 1)
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == want && d.Status.AvailableReplicas == want && d.Status.Replicas == want
	})
	g.Expect(err).NotTo(HaveOccurred())
}

// With the gateway provider off (CAFE's controllers in a child process run
// without --gateway-api-url: the test-only switch), CAFE still waits for
// the EndpointSlices, but not for the gateway to have applied them: the same
// release in ReplicaSet mode fails requests (a deleted pod's container is
// gone while Traefik, which applies configuration changes at most every
// 2 s, still sends to it). The confirmation is what makes the release
// lossless. (In InPlaceSet mode the window is only the emulated container's
// restart, a few failures per release: too few to assert every time.)
func TestTrafficReleaseWithoutGatewayConfirmationFailsRequests(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	runControllersInChildWith(ctx, t, g)
	a := newTrafficApp(ctx, t, g, "noconfirm")
	cd := a.runCafeDeployment(ctx, g, cafev1alpha1.PodSetTypeReplicaSet)
	g.Expect(listPods(ctx, g, a.ns, a.labels)).To(HaveEach(WithTransform(func(p *corev1.Pod) []string { return p.Finalizers }, Not(ContainElement(gatewayFinalizer)))),
		"without the provider no pod carries its finalizer")

	r := a.releaseCafeDeploymentUnderLoad(ctx, t, g, cd)
	g.Expect(r.Total.Failed()).To(BeNumerically(">", 0), "the release without the gateway's confirmation lost no request")
}

// waitForHeldDrain waits until a pod of the app drains (gate closed for an
// operation) while it still carries the gateway's finalizer, and returns it.
func (a *trafficApp) waitForHeldDrain(ctx context.Context, g Gomega) *corev1.Pod {
	var held *corev1.Pod
	g.Expect(waitForPods(ctx, a.ns, a.labels, func(ps []*corev1.Pod) bool {
		for _, p := range ps {
			if lossless.DrainReason(p) != "" && slices.Contains(p.Finalizers, gatewayFinalizer) {
				held = p
				return true
			}
		}
		return false
	})).To(Succeed())
	return held
}

// The gateway process is SIGKILLed while a pod drains, in each mode. Its
// removal from the gateway can no longer be confirmed, so no pod is
// operated on while it carries the gateway's finalizer (watch-checked), the
// release waits and says why in its status, and it continues once the
// gateway is back.
func TestTrafficGatewayKilledMidRelease(t *testing.T) {
	for _, kind := range []cafev1alpha1.PodSetType{cafev1alpha1.PodSetTypeInPlaceSet, cafev1alpha1.PodSetTypeReplicaSet} {
		t.Run(string(kind), func(t *testing.T) { gatewayKilledMidRelease(t, kind) })
	}
}

func gatewayKilledMidRelease(t *testing.T, kind cafev1alpha1.PodSetType) {
	g := NewWithT(t)
	ctx := testContext(t)
	a := newTrafficApp(ctx, t, g, "outage")
	rec := framework.Record(ctx, t, g, env.Admin, a.ns)
	cd := a.runCafeDeployment(ctx, g, kind)
	a.expectGatewayGuards(ctx, g)

	setImage(ctx, g, cd, a.image("v2"))
	a.waitForHeldDrain(ctx, g)
	g.Expect(env.ControlPlane.Kill(controlplane.TraefikComponent)).To(Succeed())
	killed := true
	t.Cleanup(func() {
		if killed {
			_ = env.ControlPlane.Restart(context.Background(), controlplane.TraefikComponent)
		}
	})

	waiting := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		p := meta.FindStatusCondition(c.Status.Conditions, cafev1alpha1.CafeDeploymentProgressingCondition)
		return p != nil && p.Reason == cafev1alpha1.CafeDeploymentWaitingForTrafficReason
	})
	progressing := meta.FindStatusCondition(waiting.Status.Conditions, cafev1alpha1.CafeDeploymentProgressingCondition)
	t.Logf("while the gateway is down: %s", progressing.Message)
	g.Expect(progressing.Message).To(ContainSubstring(gatewayFinalizer), "the status names what holds the release")
	for _, p := range listPods(ctx, g, a.ns, a.labels) {
		if lossless.DrainReason(p) != "" && slices.Contains(p.Finalizers, gatewayFinalizer) {
			g.Expect(p.DeletionTimestamp).To(BeNil(), "pod %s is being deleted while the gateway could not confirm it left", p.Name)
			g.Expect(p.Spec.Containers[0].Image).To(Equal(a.image("v1")), "pod %s was operated on while the gateway could not confirm it left", p.Name)
		}
	}

	g.Expect(env.ControlPlane.Restart(ctx, controlplane.TraefikComponent)).To(Succeed())
	killed = false
	waitForRelease(ctx, g, cd, releaseCompleted)
	a.waitServed(ctx, g, "v2")
	framework.ExpectLossless(ctx, g, rec)
}

// CAFE's controller process (and with it the gateway provider) is SIGKILLed
// twice while pods drain. The finalizer is neither lost nor released early:
// the release, under load, still fails no request, and the watch stream
// shows no pod operated on while it carried the finalizer.
func TestTrafficProviderKilledMidDrain(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ctl := runControllersInChild(ctx, t, g)
	a := newTrafficApp(ctx, t, g, "steady")
	rec := framework.Record(ctx, t, g, env.Admin, a.ns)
	cd := a.runCafeDeployment(ctx, g, cafev1alpha1.PodSetTypeInPlaceSet)
	a.expectGatewayGuards(ctx, g)

	l := a.startLoad(ctx, t, g)
	setImage(ctx, g, cd, a.image("v2"))
	for i := 1; i <= 2; i++ {
		held := a.waitForHeldDrain(ctx, g)
		ctl.kill(ctx, g, fmt.Sprintf("while pod %s drains holding %s", held.Name, gatewayFinalizer), func() {
			now := &corev1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(held), now)).To(Succeed())
			g.Expect(now.Finalizers).To(ContainElement(gatewayFinalizer), "the finalizer of pod %s is gone with the controller", held.Name)
		})
	}
	waitForRelease(ctx, g, cd, releaseCompleted)
	a.waitServed(ctx, g, "v2")
	l.waitSecond(ctx, g, "a second answered only by v2", servedOnlyBy("v2"))
	expectEveryRequestServed(g, l.finish(t, g))
	framework.ExpectLossless(ctx, g, rec)
}

// The pod emulator is SIGKILLed: the simulated containers stop answering,
// requests fail and the load generator counts them. Nothing in CAFE takes
// that for a release problem: the pods' status (what kwok reports) is
// unchanged, a release made meanwhile completes without failing or rolling
// back, and requests succeed again once the emulator is back.
func TestTrafficEmulatorKilled(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	a := newTrafficApp(ctx, t, g, "dark")
	cd := a.runCafeDeployment(ctx, g, cafev1alpha1.PodSetTypeInPlaceSet)

	l := a.startLoad(ctx, t, g)
	g.Expect(env.ControlPlane.Kill(controlplane.PodEmulatorComponent)).To(Succeed())
	killed := true
	t.Cleanup(func() {
		if killed {
			_ = env.ControlPlane.Restart(context.Background(), controlplane.PodEmulatorComponent)
		}
	})
	failing := l.waitSecond(ctx, g, "a second with failed requests", func(s loadgen.Second) bool { return s.Failed() > 0 })
	t.Logf("with the emulator down, second %d: %s", failing.Index, loadgen.FormatCounts(failing.Counts))

	setImage(ctx, g, cd, a.image("v2"))
	done := waitForRelease(ctx, g, cd, releaseCompleted)
	progressing := meta.FindStatusCondition(done.Status.Conditions, cafev1alpha1.CafeDeploymentProgressingCondition)
	g.Expect(progressing).NotTo(BeNil())
	g.Expect(progressing.Reason).To(Equal(cafev1alpha1.CafeDeploymentNotProgressingReason), "the release ended as completed: %s", progressing.Message)
	g.Expect(done.Status.CurrentRevision).To(Equal(done.Status.UpdateRevision), "no rollback")

	g.Expect(env.ControlPlane.Restart(ctx, controlplane.PodEmulatorComponent)).To(Succeed())
	killed = false
	a.waitServed(ctx, g, "v2")
	l.waitSecond(ctx, g, "a second answered only by v2", servedOnlyBy("v2"))
	r := l.finish(t, g)
	g.Expect(r.Total.Failed()).To(BeNumerically(">", 0), "requests failed while the emulator was down")
}
