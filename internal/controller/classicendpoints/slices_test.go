package classicendpoints

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func service(ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bank", Name: "pay"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "pay"}, Ports: ports},
	}
}

func instance(name, host string, port int32, ready bool) cafev1alpha1.ClassicInstance {
	i := cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bank", Name: name, Labels: map[string]string{"app": "pay"}},
		Spec:       cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: cafev1alpha1.ClassicArtifact{Port: port, PortName: "http"}},
	}
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	i.Status.Conditions = []metav1.Condition{{Type: cafev1alpha1.ClassicInstanceReadyCondition, Status: status}}
	return i
}

func hostsOf(addresses map[string]string) map[string]*cafev1alpha1.ClassicHost {
	out := map[string]*cafev1alpha1.ClassicHost{}
	for name, addr := range addresses {
		out[name] = &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-" + name, Address: addr},
			Status: cafev1alpha1.ClassicHostStatus{Conditions: []metav1.Condition{{Type: cafev1alpha1.ClassicHostReadyCondition, Status: metav1.ConditionTrue}}}}
	}
	return out
}

func TestSlicesListInstancesByHostAddressWithTheirReadiness(t *testing.T) {
	g := NewWithT(t)
	svc := service(corev1.ServicePort{Name: "web", Port: 80, TargetPort: intstr.FromString("http")})
	hosts := hostsOf(map[string]string{"a": "198.19.200.1", "b": "198.19.200.2", "lo": "127.0.100.1"})
	got := desiredSlices(svc, []cafev1alpha1.ClassicInstance{
		instance("pay-2", "b", 8080, false), instance("pay-1", "a", 8080, true), instance("lost", "gone", 8080, true),
		instance("loopback", "lo", 8080, true),
	}, hosts)
	g.Expect(got).To(HaveLen(1))
	s := got[0]
	g.Expect(s.Labels).To(Equal(map[string]string{discoveryv1.LabelServiceName: "pay", discoveryv1.LabelManagedBy: "cafe.io"}))
	g.Expect(s.AddressType).To(Equal(discoveryv1.AddressTypeIPv4))
	g.Expect(s.Ports).To(ConsistOf(And(HaveField("Name", HaveValue(Equal("web"))), HaveField("Port", HaveValue(Equal(int32(8080)))),
		HaveField("Protocol", HaveValue(Equal(corev1.ProtocolTCP))))))
	g.Expect(s.Endpoints).To(HaveLen(2), "an instance on an unknown host has no address, one on a loopback address cannot be listed")
	g.Expect(s.Endpoints[0].TargetRef.Name).To(Equal("pay-1"), "sorted by instance")
	g.Expect(s.Endpoints[0].Addresses).To(Equal([]string{"198.19.200.1"}))
	g.Expect(*s.Endpoints[0].Zone).To(Equal("zone-a"))
	g.Expect(*s.Endpoints[0].Conditions.Ready).To(BeTrue())
	g.Expect(*s.Endpoints[1].Conditions.Ready).To(BeFalse())
	g.Expect(*s.Endpoints[1].Conditions.Serving).To(BeFalse())

	terminating := instance("pay-1", "a", 8080, true)
	now := metav1.Now()
	terminating.DeletionTimestamp = &now
	ep := desiredSlices(svc, []cafev1alpha1.ClassicInstance{terminating}, hosts)[0].Endpoints[0]
	g.Expect([]bool{*ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating}).To(Equal([]bool{false, true, true}))

	g.Expect(desiredSlices(svc, []cafev1alpha1.ClassicInstance{instance("pay-2", "b", 8080, false), instance("pay-1", "a", 8080, true)}, hosts)).
		To(Equal(got[:1]), "deterministic: the same inputs give the same slices")

	hosts["a"].Status.Conditions[0] = metav1.Condition{Type: cafev1alpha1.ClassicHostReadyCondition, Status: metav1.ConditionFalse, Reason: cafev1alpha1.ClassicHostReasonUnreachable}
	ep = desiredSlices(svc, []cafev1alpha1.ClassicInstance{instance("pay-1", "a", 8080, true)}, hosts)[0].Endpoints[0]
	g.Expect([]bool{*ep.Conditions.Ready, *ep.Conditions.Serving}).To(Equal([]bool{false, false}), "a healthy instance on a host that is not Ready leaves traffic")
}

func TestSlicesGroupByResolvedPortAndFamilyAndHoldAtMostAHundred(t *testing.T) {
	g := NewWithT(t)
	svc := service(
		corev1.ServicePort{Name: "web", Port: 80, TargetPort: intstr.FromString("http")},
		corev1.ServicePort{Name: "admin", Port: 9000, TargetPort: intstr.FromInt32(9000)},
	)
	hosts := hostsOf(map[string]string{"a": "198.19.200.1", "v6": "fd00::1"})
	var instances []cafev1alpha1.ClassicInstance
	for i := range 150 {
		instances = append(instances, instance(fmt.Sprintf("pay-%03d", i), "a", 8080, true))
	}
	instances = append(instances, instance("other-port", "a", 8081, true), instance("six", "v6", 8080, true), instance("admin", "a", 9000, true))
	unnamed := instance("unnamed", "a", 7000, true)
	unnamed.Spec.Artifact.PortName = "metrics"
	instances = append(instances, unnamed)

	got := desiredSlices(svc, instances, hosts)
	count := map[string]int{}
	names := map[string]bool{}
	for _, s := range got {
		g.Expect(len(s.Endpoints)).To(BeNumerically("<=", MaxEndpointsPerSlice))
		g.Expect(len(s.Name)).To(BeNumerically("<=", 63))
		names[s.Name] = true
		key := string(s.AddressType)
		for _, p := range s.Ports {
			key += fmt.Sprintf(",%s:%d", *p.Name, *p.Port)
		}
		count[key] += len(s.Endpoints)
	}
	g.Expect(names).To(HaveLen(len(got)), "slice names are unique")
	g.Expect(count).To(Equal(map[string]int{
		"IPv4,web:8080": 150,
		"IPv4,web:8081": 1,
		"IPv6,web:8080": 1,
		// named "http" and numbered 9000: both of the Service's ports reach it
		"IPv4,web:9000,admin:9000": 1,
	}), "an instance reached by none of the Service's ports (unnamed) is not listed")
	g.Expect(got).To(HaveLen(5), "150 endpoints of one group take two slices")
}
