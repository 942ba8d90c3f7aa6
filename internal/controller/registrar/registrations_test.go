package registrar

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/cafe-io/cafe/internal/registry"
)

func pod(name, ip string, ready bool, mutate ...func(*corev1.Pod)) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": "api"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app",
			Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8081}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}}},
		Status: corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func TestRegistrations(t *testing.T) {
	g := NewWithT(t)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
			{Name: "named", Port: 81, TargetPort: intstr.FromString("web")},
			{Name: "missing", Port: 82, TargetPort: intstr.FromString("nope")},
			{Name: "udp", Port: 53, Protocol: corev1.ProtocolUDP},
		}},
	}
	pods := []corev1.Pod{
		pod("ready", "10.0.0.1", true),
		pod("unready", "10.0.0.2", false),
		pod("deleting", "10.0.0.3", true, func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }),
		pod("other-app", "10.0.0.4", true, func(p *corev1.Pod) { p.Labels["app"] = "web" }),
		pod("no-ip", "", true),
	}
	slice := discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9090)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"198.18.1.1"}, Zone: ptr.To("zone-c"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "ClassicInstance", Name: "api-vm-1"}},
			{Addresses: []string{"198.18.1.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			{Addresses: []string{"198.18.1.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Terminating: ptr.To(true)}},
		},
	}
	got := Registrations(svc, pods, []discoveryv1.EndpointSlice{slice}, func(node string) string { return map[string]string{"node-1": "zone-a"}[node] })
	g.Expect(got).To(Equal(map[string]registry.Registration{
		"10.0.0.1:8080":   {Address: "10.0.0.1:8080", PortName: "http", Kind: registry.KindPod, Name: "ready", Zone: "zone-a"},
		"10.0.0.1:8081":   {Address: "10.0.0.1:8081", PortName: "named", Kind: registry.KindPod, Name: "ready", Zone: "zone-a"},
		"198.18.1.1:9090": {Address: "198.18.1.1:9090", PortName: "http", Kind: "ClassicInstance", Name: "api-vm-1", Zone: "zone-c"},
	}))
}
