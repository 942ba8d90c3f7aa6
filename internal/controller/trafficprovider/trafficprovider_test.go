package trafficprovider_test

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/test/framework/traefikproc"
)

// The lifecycle: the finalizer goes on when the gate opens; closing the
// gate does not remove it while the gateway still routes to the pod; it
// goes once the gateway drops the pod, and comes back when the gate
// reopens.
func TestFinalizerFollowsTheGateAndTheGateway(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const ip = "10.2.0.1"
	observer.route(ip, true)
	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))

	setGate(ctx, g, c, pod, corev1.ConditionFalse)
	g.Consistently(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer), "released while the gateway still routes to the pod")

	observer.route(ip, false)
	g.Eventually(finalizers(ctx, c, pod)).Should(BeEmpty())

	setGate(ctx, g, c, pod, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))
}

// Only pods in the lossless protocol that a Gateway of ours may route to
// get the finalizer: not a pod without the gate (a native Deployment's,
// even one behind the route), not a pod no routed Service selects, not a
// pod behind another controller's Gateway.
func TestPodsOutsideTheGatewayAreNeverTouched(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	g.Expect(c.Create(ctx, gatewayOf(ns, "other-gw", otherClass))).To(Succeed())
	g.Expect(c.Create(ctx, serviceOf(ns, "foreign", map[string]string{"app": "foreign"}))).To(Succeed())
	g.Expect(c.Create(ctx, routeOf(ns, "foreign", "other-gw", "foreign"))).To(Succeed())
	g.Expect(c.Create(ctx, serviceOf(ns, "unrouted", map[string]string{"app": "unrouted"}))).To(Succeed())

	// The condition is set even on the ungated pod: the gate in the spec
	// is what puts a pod in the protocol.
	native := startPod(ctx, g, c, podOf(ns, "native", map[string]string{"app": "web"}, false), "10.3.0.1", corev1.ConditionTrue)
	unrouted := startPod(ctx, g, c, podOf(ns, "unrouted", map[string]string{"app": "unrouted"}, true), "10.3.0.2", corev1.ConditionTrue)
	foreign := startPod(ctx, g, c, podOf(ns, "foreign", map[string]string{"app": "foreign"}, true), "10.3.0.3", corev1.ConditionTrue)
	// The control: created last, guarded.
	guarded := startPod(ctx, g, c, podOf(ns, "guarded", map[string]string{"app": "web"}, true), "10.3.0.4", corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, guarded)).Should(ConsistOf(finalizer))
	for _, pod := range []*corev1.Pod{native, unrouted, foreign} {
		g.Consistently(finalizers(ctx, c, pod)).Should(BeEmpty(), "pod %s", pod.Name)
	}
}

// Serves follows every object it reads, created in any order: no
// finalizer until the route reaches a Gateway whose class is ours; a
// Service that stops selecting the pod releases it once the gateway
// confirms.
func TestServesFollowsRoutesServicesGatewaysAndClasses(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	const ip = "10.4.0.1"
	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	class := "class-" + ns
	g.Expect(c.Create(ctx, serviceOf(ns, "web", map[string]string{"app": "web"}))).To(Succeed())
	g.Expect(c.Create(ctx, routeOf(ns, "web", "gw", "web"))).To(Succeed())
	g.Expect(c.Create(ctx, gatewayOf(ns, "gw", class))).To(Succeed())
	g.Consistently(finalizers(ctx, c, pod)).Should(BeEmpty(), "guarded before its Gateway's class exists")

	gc := &gatewayv1.GatewayClass{}
	gc.Name, gc.Spec.ControllerName = class, ourController
	g.Expect(c.Create(ctx, gc)).To(Succeed())
	t.Cleanup(func() { _ = c.Delete(ctx, gc) })
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))

	// The Service now selects other pods; the gateway still lists this
	// one for a while.
	observer.route(ip, true)
	svc := &corev1.Service{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc)).To(Succeed())
	svc.Spec.Selector = map[string]string{"app": "web", "track": "canary"}
	g.Expect(c.Update(ctx, svc)).To(Succeed())
	g.Consistently(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer), "released while the gateway still routes to the pod")
	observer.route(ip, false)
	g.Eventually(finalizers(ctx, c, pod)).Should(BeEmpty())
}

// A route removed does not release its pods until the gateway has
// dropped them.
func TestRouteRemovedReleasesAfterTheGatewayConfirms(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const ip = "10.5.0.1"
	observer.route(ip, true)
	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))

	g.Expect(c.Delete(ctx, routeOf(ns, "web", "gw"))).To(Succeed())
	g.Consistently(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer), "released while the gateway still routes to the pod")
	observer.route(ip, false)
	g.Eventually(finalizers(ctx, c, pod)).Should(BeEmpty())
}

// A pod deleted while guarded (a forced deletion: CAFE itself deletes
// only released pods) stays until the gateway has dropped it.
func TestDeletedPodStaysUntilTheGatewayDropsIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const ip = "10.6.0.1"
	observer.route(ip, true)
	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))

	g.Expect(c.Delete(ctx, pod)).To(Succeed())
	g.Consistently(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer), "released while the gateway still routes to the pod")
	observer.route(ip, false)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
	}).Should(BeTrue())
}

// The tests below change what the whole suite's gateway answers, so each
// runs alone (SetupAlone), before the parallel ones, and ends with no pod
// waiting.

// A closed gate while the gateway still routes to the pod: the finalizer
// stays through answer after answer (the metric counts them), and goes
// with the first answer without the pod.
func TestStillRoutedPodKeepsTheFinalizerAnswerAfterAnswer(t *testing.T) {
	ctx, g, ns := suite.SetupAlone(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const ip = "10.7.0.1"
	observer.route(ip, true)
	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))

	routed, released := confirmations(g, "routed"), confirmations(g, "released")
	setGate(ctx, g, c, pod, corev1.ConditionFalse)
	g.Eventually(func(g Gomega) float64 { return confirmations(g, "routed") }).Should(BeNumerically(">=", routed+5))
	g.Expect(finalizers(ctx, c, pod)(g)).To(ConsistOf(finalizer))
	g.Expect(waiting(g)).To(Equal(1.0))
	g.Expect(confirmations(g, "released")).To(Equal(released))

	observer.route(ip, false)
	g.Eventually(finalizers(ctx, c, pod)).Should(BeEmpty())
	// The controller counts the confirmation once its write returned: the
	// test may see the finalizer gone a moment before the count.
	g.Eventually(func(g Gomega) float64 { return confirmations(g, "released") }).Should(Equal(released + 1))
	g.Consistently(func(g Gomega) float64 { return confirmations(g, "released") }).Should(Equal(released+1), "counted once")
	g.Eventually(waiting).Should(Equal(0.0))
}

// A gateway that does not answer is not a confirmation: the finalizer
// stays until it answers without the pod.
func TestUnreachableGatewayKeepsTheFinalizer(t *testing.T) {
	ctx, g, ns := suite.SetupAlone(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const ip = "10.8.0.1"
	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))

	observer.fail(errUnreachable)
	defer observer.fail(nil)
	errs := confirmations(g, "error")
	setGate(ctx, g, c, pod, corev1.ConditionFalse)
	g.Eventually(func(g Gomega) float64 { return confirmations(g, "error") }).Should(BeNumerically(">=", errs+5))
	g.Expect(finalizers(ctx, c, pod)(g)).To(ConsistOf(finalizer))
	g.Expect(waiting(g)).To(Equal(1.0))

	observer.fail(nil)
	g.Eventually(finalizers(ctx, c, pod)).Should(BeEmpty())
	g.Eventually(waiting).Should(Equal(0.0))
}

// The same release confirmed by a real Traefik: the finalizer stays while
// Traefik's runtime configuration lists the pod's IP among a service's
// servers, and goes once the configuration (rewritten, as Traefik's
// Gateway API provider would after the EndpointSlice dropped the pod) no
// longer does.
func TestRealTraefikConfirmsTheRelease(t *testing.T) {
	ctx, g, ns := suite.SetupAlone(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const ip = "127.0.0.21"
	config := func(servers ...string) string {
		s := "http:\n  routers:\n    web:\n      entryPoints: [web]\n      rule: PathPrefix(`/`)\n      service: web\n  services:\n    web:\n      loadBalancer:\n        servers:\n"
		for _, srv := range servers {
			s += fmt.Sprintf("          - url: http://%s:8080\n", srv)
		}
		return s
	}
	tr, err := traefikproc.Start(ctx, traefikproc.Options{Dir: t.TempDir(), Dynamic: config(ip, "127.0.0.22")})
	g.Expect(err).NotTo(HaveOccurred())
	defer tr.Stop()
	traefik, err := gateway.NewTraefik(tr.APIURL())
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(traefik.Backends).WithContext(ctx).Should(HaveLen(2), "traefik loaded its configuration")
	observer.use(traefik)
	defer observer.use(nil)

	pod := startPod(ctx, g, c, podOf(ns, "web-0", map[string]string{"app": "web"}, true), ip, corev1.ConditionTrue)
	g.Eventually(finalizers(ctx, c, pod)).Should(ConsistOf(finalizer))
	routed := confirmations(g, "routed")
	setGate(ctx, g, c, pod, corev1.ConditionFalse)
	g.Eventually(func(g Gomega) float64 { return confirmations(g, "routed") }).Should(BeNumerically(">=", routed+5))
	g.Expect(finalizers(ctx, c, pod)(g)).To(ConsistOf(finalizer))

	g.Expect(tr.WriteDynamic(config("127.0.0.22"))).To(Succeed())
	g.Eventually(finalizers(ctx, c, pod)).Should(BeEmpty())
	g.Eventually(waiting).Should(Equal(0.0))
}
