package classicendpoints_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/classicendpoints"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
)

// One real kube-apiserver with CAFE installed and CAFE's manager running.
// The instances' status is written by the tests, in the place of their
// hosts' agents (the agent itself is tested in the classichost suite).
var suite framework.ControllerSuite

func TestMain(m *testing.M) {
	suite.Prepare = func(ctx context.Context, _ client.Client) error { return install.CAFE(ctx, suite.Config) }
	os.Exit(suite.Main(m))
}

// createHost creates a host that heartbeated just now (its Lease renewed,
// as its agent would), so CAFE judges it Ready for the suite's stale bound.
func createHost(ctx context.Context, g Gomega, name, zone, address string) {
	h := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.ClassicHostSpec{Zone: zone, Address: address}}
	g.Expect(suite.Client.Create(ctx, h)).To(Succeed())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), RenewTime: &metav1.MicroTime{Time: time.Now()}, LeaseDurationSeconds: ptr.To[int32](40)},
	}
	g.Expect(suite.Client.Create(ctx, lease)).To(Succeed())
	g.Eventually(func() bool {
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: name}, h)).To(Succeed())
		return meta.IsStatusConditionTrue(h.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition)
	}).Should(BeTrue())
}

func createInstance(ctx context.Context, g Gomega, ns, name, host string, port int32, labels map[string]string) *cafev1alpha1.ClassicInstance {
	i := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: cafev1alpha1.ClassicArtifact{
			URL: "http://127.0.0.1:1/app.tar.gz", SHA256: "0000000000000000000000000000000000000000000000000000000000000000",
			Command: []string{"bin/app"}, Port: port,
		}},
	}
	g.Expect(suite.Client.Create(ctx, i)).To(Succeed())
	return i
}

// setReady writes the instance's Ready condition, as its agent would.
func setReady(ctx context.Context, g Gomega, i *cafev1alpha1.ClassicInstance, ready bool) {
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(i), i)).To(Succeed())
	i.Status.ObservedGeneration = i.Generation
	meta.SetStatusCondition(&i.Status.Conditions, metav1.Condition{Type: cafev1alpha1.ClassicInstanceReadyCondition, Status: status, Reason: "Test", ObservedGeneration: i.Generation})
	g.Expect(suite.Client.Status().Update(ctx, i)).To(Succeed())
}

// cafeEndpoints maps the instances in the Service's CAFE slices to
// "<address>:<port> ready=<ready>".
func cafeEndpoints(ctx context.Context, g Gomega, ns, service string) func() map[string]string {
	return func() map[string]string {
		list := &discoveryv1.EndpointSliceList{}
		g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: classicendpoints.ManagedBy,
		})).To(Succeed())
		out := map[string]string{}
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				for _, p := range s.Ports {
					out[ep.TargetRef.Name] = ep.Addresses[0] + ":" + itoa(*p.Port) + " ready=" + btoa(*ep.Conditions.Ready) + " zone=" + *ep.Zone
				}
			}
		}
		return out
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
func btoa(b bool) string  { return strconv.FormatBool(b) }

// A Service that selects classic instances gets EndpointSlices managed by
// CAFE listing them at their hosts' addresses, ready as their health
// checks say, beside the slices Kubernetes keeps for its pods; they follow
// the instances, the hosts and the Service, and go with the Service.
func TestAServiceListsTheClassicInstancesItSelects(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	hostA, hostB := "vm-a-"+ns, "vm-b-"+ns
	createHost(ctx, g, hostA, "zone-a", "198.19.201.1")
	createHost(ctx, g, hostB, "zone-b", "198.19.201.2")
	pay := map[string]string{"app": "pay"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pay"},
		Spec: corev1.ServiceSpec{Selector: pay, Ports: []corev1.ServicePort{
			{Name: "web", Port: 80, TargetPort: intstr.FromString("http")},
		}},
	}
	g.Expect(suite.Client.Create(ctx, svc)).To(Succeed())
	one := createInstance(ctx, g, ns, "pay-1", hostA, 8080, pay)
	two := createInstance(ctx, g, ns, "pay-2", hostB, 8081, pay)
	createInstance(ctx, g, ns, "other", hostA, 8082, map[string]string{"app": "other"})

	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).Should(Equal(map[string]string{
		"pay-1": "198.19.201.1:8080 ready=false zone=zone-a",
		"pay-2": "198.19.201.2:8081 ready=false zone=zone-b",
	}), "listed, not ready before their health checks pass")
	setReady(ctx, g, one, true)
	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).Should(HaveKeyWithValue("pay-1", "198.19.201.1:8080 ready=true zone=zone-a"))

	list := &discoveryv1.EndpointSliceList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelManagedBy: classicendpoints.ManagedBy})).To(Succeed())
	for _, s := range list.Items {
		g.Expect(metav1.IsControlledBy(&s, svc)).To(BeTrue(), "the Service owns its slices")
	}

	// The instance leaves when relabelled, returns when labelled back.
	g.Expect(suite.Client.Patch(ctx, two, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"app":"moved"}}}`)))).To(Succeed())
	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).ShouldNot(HaveKey("pay-2"))
	g.Expect(suite.Client.Patch(ctx, two, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"app":"pay"}}}`)))).To(Succeed())
	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).Should(HaveKey("pay-2"))

	// A host's new address reaches the slices.
	host := &cafev1alpha1.ClassicHost{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: hostA}, host)).To(Succeed())
	host.Spec.Address = "198.19.201.9"
	g.Expect(suite.Client.Update(ctx, host)).To(Succeed())
	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).Should(HaveKeyWithValue("pay-1", "198.19.201.9:8080 ready=true zone=zone-a"))

	// A deleted instance leaves; a Service that no longer reaches the
	// instances' port has no CAFE slice.
	g.Expect(suite.Client.Delete(ctx, two)).To(Succeed())
	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).Should(Equal(map[string]string{"pay-1": "198.19.201.9:8080 ready=true zone=zone-a"}))
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
	svc.Spec.Ports[0].TargetPort = intstr.FromString("grpc")
	g.Expect(suite.Client.Update(ctx, svc)).To(Succeed())
	g.Eventually(cafeEndpoints(ctx, g, ns, "pay")).Should(BeEmpty())
}

// CAFE's slices and Kubernetes' own live side by side: CAFE neither
// writes nor deletes a slice another controller manages, and the
// EndpointSlice controller leaves CAFE's alone.
func TestCafeLeavesOtherEndpointSlicesAlone(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	host := "vm-" + ns
	createHost(ctx, g, host, "zone-c", "198.19.201.3")
	sel := map[string]string{"app": "mixed"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mixed"},
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "web", Port: 8080}}},
	}
	g.Expect(suite.Client.Create(ctx, svc)).To(Succeed())
	foreign := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mixed-pods", Labels: map[string]string{
			discoveryv1.LabelServiceName: "mixed", discoveryv1.LabelManagedBy: "someone-else",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.19.201.50"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("web"), Port: ptr.To[int32](8080)}},
	}
	g.Expect(suite.Client.Create(ctx, foreign)).To(Succeed())
	createInstance(ctx, g, ns, "vm-1", host, 8080, sel)
	g.Eventually(cafeEndpoints(ctx, g, ns, "mixed")).Should(HaveKey("vm-1"), "a numeric targetPort (defaulted to the port) reaches an instance on that port")
	g.Consistently(func() error { return suite.Client.Get(ctx, client.ObjectKeyFromObject(foreign), foreign) }).Should(Succeed())
	g.Expect(foreign.Endpoints).To(HaveLen(1))
	g.Expect(foreign.Endpoints[0].Addresses).To(Equal([]string{"198.19.201.50"}))
}
