package trafficprovider_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	. "github.com/onsi/gomega"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/test/framework"
)

// registryFinalizer is the registry provider's.
var registryFinalizer = cafev1alpha1.TrafficFinalizer("registry")

// A ready pod of a published Service is registered on the Service's
// target port; closing its gate deregisters it, and its registry
// finalizer stays until every live consumer of the service has
// acknowledged the deregistration's revision: a consumer that lags holds
// it, one whose lease is gone does not.
func TestRegistryReleasesAPodOnlyOnceEveryConsumerHasAppliedItsDeregistration(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	svc := registry.Service{Namespace: ns, Name: "api"}
	g.Expect(c.Create(ctx, publishedService(ns, "api", map[string]string{"app": "api"}))).To(Succeed())
	const ip = "10.40.0.1"
	pod := startReadyPod(ctx, g, c, podOf(ns, "api-0", map[string]string{"app": "api"}, true), ip)
	g.Eventually(registrations(ctx, svc)).Should(HaveKeyWithValue(ip+":8080", registry.Registration{
		Address: ip + ":8080", PortName: "http", Kind: registry.KindPod, Name: "api-0"}))
	g.Eventually(finalizers(ctx, c, pod)).Should(ContainElement(registryFinalizer))

	// Two consumers: one that keeps up, one that lags at the revision of
	// the registration.
	current := startTestConsumer(ctx, t, g, svc, "current")
	lagging := startTestConsumer(ctx, t, g, svc, "lagging")

	setReady(ctx, g, c, pod, corev1.ConditionFalse)
	g.Eventually(registrations(ctx, svc)).ShouldNot(HaveKey(ip + ":8080"))
	changed := revisionOf(ctx, g, svc)
	current.ack(ctx, g, changed)
	g.Consistently(finalizers(ctx, c, pod)).Should(ContainElement(registryFinalizer), "released while a consumer has not applied the deregistration")

	lagging.ack(ctx, g, changed)
	g.Eventually(finalizers(ctx, c, pod)).ShouldNot(ContainElement(registryFinalizer))

	// Registered again when ready; a consumer that died (its lease gone)
	// does not hold the next release.
	setReady(ctx, g, c, pod, corev1.ConditionTrue)
	g.Eventually(registrations(ctx, svc)).Should(HaveKey(ip + ":8080"))
	g.Eventually(finalizers(ctx, c, pod)).Should(ContainElement(registryFinalizer))
	setReady(ctx, g, c, pod, corev1.ConditionFalse)
	g.Eventually(registrations(ctx, svc)).ShouldNot(HaveKey(ip + ":8080"))
	current.ack(ctx, g, revisionOf(ctx, g, svc))
	g.Consistently(finalizers(ctx, c, pod)).Should(ContainElement(registryFinalizer), "released while the lagging consumer lives")
	lagging.die(ctx, g)
	g.Eventually(finalizers(ctx, c, pod)).ShouldNot(ContainElement(registryFinalizer))
}

// Only pods of published Services are registered and guarded; a Service
// unpublished deregisters its pods; a registration deleted by hand comes
// back (the registrar watches the registry too); a deleted pod leaves the
// registry and is gone once the consumers have seen it.
func TestRegistryFollowsPublishedServicesAndRepairsItself(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	c := suite.Client
	svc := registry.Service{Namespace: ns, Name: "api"}
	g.Expect(c.Create(ctx, publishedService(ns, "api", map[string]string{"app": "api"}))).To(Succeed())
	unpublished := serviceOf(ns, "internal", map[string]string{"app": "internal"})
	g.Expect(c.Create(ctx, unpublished)).To(Succeed())
	other := startReadyPod(ctx, g, c, podOf(ns, "internal-0", map[string]string{"app": "internal"}, true), "10.41.0.2")
	pod := startReadyPod(ctx, g, c, podOf(ns, "api-0", map[string]string{"app": "api"}, true), "10.41.0.1")
	g.Eventually(registrations(ctx, svc)).Should(HaveKey("10.41.0.1:8080"))
	g.Eventually(finalizers(ctx, c, pod)).Should(ContainElement(registryFinalizer))
	g.Consistently(registrations(ctx, registry.Service{Namespace: ns, Name: "internal"})).Should(BeEmpty())
	g.Consistently(finalizers(ctx, c, other)).ShouldNot(ContainElement(registryFinalizer))

	_, err := registryServer.Client.Delete(ctx, registry.InstanceKey(svc, mustAddrPort("10.41.0.1:8080")))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(registrations(ctx, svc)).Should(HaveKey("10.41.0.1:8080"), "the registrar restores what it registers")

	consumer := startTestConsumer(ctx, t, g, svc, "c1")
	g.Expect(c.Delete(ctx, pod)).To(Succeed())
	g.Eventually(registrations(ctx, svc)).ShouldNot(HaveKey("10.41.0.1:8080"))
	g.Consistently(finalizers(ctx, c, pod)).Should(ContainElement(registryFinalizer), "gone before the consumer applied its deregistration")
	consumer.ack(ctx, g, revisionOf(ctx, g, svc))
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
	}).Should(BeTrue())

	pod2 := startReadyPod(ctx, g, c, podOf(ns, "api-1", map[string]string{"app": "api"}, true), "10.41.0.3")
	g.Eventually(registrations(ctx, svc)).Should(HaveKey("10.41.0.3:8080"))
	g.Eventually(finalizers(ctx, c, pod2)).Should(ContainElement(registryFinalizer))
	published := &corev1.Service{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, published)).To(Succeed())
	delete(published.Labels, cafev1alpha1.RegistryPublishLabel)
	g.Expect(c.Update(ctx, published)).To(Succeed())
	g.Eventually(registrations(ctx, svc)).Should(BeEmpty())
	g.Consistently(finalizers(ctx, c, pod2)).Should(ContainElement(registryFinalizer), "released before the consumer applied the unpublishing")
	consumer.ack(ctx, g, revisionOf(ctx, g, svc))
	g.Eventually(finalizers(ctx, c, pod2)).ShouldNot(ContainElement(registryFinalizer))
}

// publishedService selects the labels on port 80 (named http), target
// port 8080, and is published in the registry.
func publishedService(ns, name string, selector map[string]string) *corev1.Service {
	svc := serviceOf(ns, name, selector)
	svc.Labels = map[string]string{cafev1alpha1.RegistryPublishLabel: "true"}
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}
	return svc
}

// startReadyPod starts the pod with its gate open and Ready, as the
// kubelet reports a pod whose readiness gates and containers are ready.
func startReadyPod(ctx context.Context, g Gomega, c client.Client, pod *corev1.Pod, ip string) *corev1.Pod {
	startPod(ctx, g, c, pod, ip, corev1.ConditionTrue)
	setReady(ctx, g, c, pod, corev1.ConditionTrue)
	return pod
}

// setReady sets the gate and the Ready condition together (the kubelet
// turns a pod unready when its gate closes).
func setReady(ctx context.Context, g Gomega, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus) {
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: status, Reason: "Test", LastTransitionTime: metav1.Now()}
	g.Expect(framework.PatchPodStatus(ctx, c, pod, map[string]any{"conditions": []corev1.PodCondition{gateCondition(status), ready}})).To(Succeed())
}

// registrations reads a service's registrations from the registry.
func registrations(ctx context.Context, svc registry.Service) func(Gomega) map[string]registry.Registration {
	return func(g Gomega) map[string]registry.Registration {
		resp, err := registryServer.Client.Get(ctx, registry.InstancesPrefix(svc), clientv3.WithPrefix())
		g.Expect(err).NotTo(HaveOccurred())
		out := map[string]registry.Registration{}
		for _, kv := range resp.Kvs {
			r, err := registry.DecodeRegistration(string(kv.Key), kv.Value)
			g.Expect(err).NotTo(HaveOccurred())
			out[r.Address] = r
		}
		return out
	}
}

// revisionOf is the mod_revision of the service's revision key: the
// revision of its latest change.
func revisionOf(ctx context.Context, g Gomega, svc registry.Service) int64 {
	resp, err := registryServer.Client.Get(ctx, registry.RevisionKey(svc))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.Kvs).To(HaveLen(1))
	return resp.Kvs[0].ModRevision
}

// testConsumer is a consumer whose acknowledgements the test writes, under
// a lease of its own, as registry.Consumer would: at the revision it has
// applied.
type testConsumer struct {
	svc   registry.Service
	name  string
	lease clientv3.LeaseID
}

func startTestConsumer(ctx context.Context, t *testing.T, g Gomega, svc registry.Service, name string) *testConsumer {
	lease, err := registryServer.Client.Grant(ctx, 60)
	g.Expect(err).NotTo(HaveOccurred())
	c := &testConsumer{svc: svc, name: name, lease: lease.ID}
	t.Cleanup(func() { _, _ = registryServer.Client.Revoke(context.Background(), lease.ID) })
	c.ack(ctx, g, 1)
	return c
}

func (c *testConsumer) ack(ctx context.Context, g Gomega, rev int64) {
	b, err := json.Marshal(registry.Ack{Revision: rev, Consumer: "test consumer " + c.name})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = registryServer.Client.Put(ctx, registry.ConsumerKey(c.svc, c.name), string(b), clientv3.WithLease(c.lease))
	g.Expect(err).NotTo(HaveOccurred())
}

// die ends the consumer's lease, as its expiry does when it dies.
func (c *testConsumer) die(ctx context.Context, g Gomega) {
	_, err := registryServer.Client.Revoke(ctx, c.lease)
	g.Expect(err).NotTo(HaveOccurred())
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
