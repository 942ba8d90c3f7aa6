package trafficprovider_test

import (
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// The lifecycle of a classic instance, as of a pod: the finalizer goes on
// while the gate is open and a route serves it; closing the gate does not
// remove it while the gateway still sends to the instance's address and
// port; the gateway still sending to another app's instance on the same
// host (the same IP, another port) does not hold it; it comes back when
// the gate reopens.
func TestInstanceFinalizerFollowsTheGateAndTheGatewaysAddressAndPort(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	const addr, neighbour = "10.20.0.1:9090", "10.20.0.1:8080"
	observer.routeAddr(addr, true)
	observer.routeAddr(neighbour, true) // another app's instance on the host
	t.Cleanup(func() { observer.routeAddr(neighbour, false) })
	inst := startInstance(ctx, g, c, instanceOf(ns, "web-1", "vm-"+ns, map[string]string{"app": "web"}, 9090), addr)
	g.Eventually(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer))

	routed := instanceConfirmations(g, "routed")
	setInstanceGate(ctx, g, c, inst, cafev1alpha1.ClassicTrafficGateDrainForUpdate)
	g.Eventually(func(g Gomega) float64 { return instanceConfirmations(g, "routed") }).Should(BeNumerically(">", routed), "the gateway was asked")
	g.Consistently(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer), "released while the gateway still sends to the instance")

	observer.routeAddr(addr, false)
	g.Eventually(instanceFinalizers(ctx, c, inst)).Should(BeEmpty(), "held by another instance's port on the same host")

	setInstanceGate(ctx, g, c, inst, cafev1alpha1.ClassicTrafficGateOpen)
	g.Eventually(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer))
}

// Only instances a route of a Gateway of ours sends to get the finalizer,
// and a Service that starts selecting an instance (the route, the Service
// and the Gateway created after it) wakes it; one that stops selecting it
// releases it once the gateway confirms.
func TestInstanceServesFollowsRoutesAndServices(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	const addr = "10.21.0.1:9090"
	host := "vm-" + ns
	inst := startInstance(ctx, g, c, instanceOf(ns, "web-1", host, map[string]string{"app": "web"}, 9090), addr)
	unrouted := startInstance(ctx, g, c, instanceOf(ns, "other-1", host, map[string]string{"app": "other"}, 9091), "10.21.0.1:9091")
	g.Consistently(instanceFinalizers(ctx, c, inst)).Should(BeEmpty(), "guarded before any route sends to it")

	webApp(ctx, g, c, ns)
	g.Eventually(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer))
	g.Consistently(instanceFinalizers(ctx, c, unrouted)).Should(BeEmpty(), "no routed Service selects it")

	// The Service now selects other instances; the gateway still lists
	// this one for a while.
	observer.routeAddr(addr, true)
	svc := serviceOf(ns, "web", nil)
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
	svc.Spec.Selector = map[string]string{"app": "web", "track": "canary"}
	g.Expect(c.Update(ctx, svc)).To(Succeed())
	g.Consistently(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer), "released while the gateway still sends to the instance")
	observer.routeAddr(addr, false)
	g.Eventually(instanceFinalizers(ctx, c, inst)).Should(BeEmpty())
}

// An instance deleted while guarded (CAFE's ClassicSet deletes only
// released ones; a person may delete any) stays until the gateway has
// dropped it. It has not reported an address: the gateway is asked about
// its host's address and its port.
func TestDeletedInstanceStaysUntilTheGatewayDropsIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	webApp(ctx, g, c, ns)
	host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-" + ns},
		Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "10.22.0.1"}}
	g.Expect(c.Create(ctx, host)).To(Succeed())
	t.Cleanup(func() { _ = c.Delete(ctx, host) })
	const addr = "10.22.0.1:9090"
	observer.routeAddr(addr, true)
	inst := startInstance(ctx, g, c, instanceOf(ns, "web-1", host.Name, map[string]string{"app": "web"}, 9090), "")
	g.Eventually(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer))

	g.Expect(c.Delete(ctx, inst)).To(Succeed())
	g.Consistently(instanceFinalizers(ctx, c, inst)).Should(ConsistOf(finalizer), "released while the gateway still sends to the host's address and the instance's port")
	observer.routeAddr(addr, false)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(inst), &cafev1alpha1.ClassicInstance{}))
	}).Should(BeTrue())
}
