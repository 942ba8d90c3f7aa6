package traffic

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSelects(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{"app": "web", "track": "stable"}}}
	svc := func(ns string, selector map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns}, Spec: corev1.ServiceSpec{Selector: selector}}
	}
	g := NewWithT(t)
	g.Expect(Selects(svc("shop", map[string]string{"app": "web"}), pod.Namespace, pod.Labels)).To(BeTrue())
	g.Expect(Selects(svc("shop", map[string]string{"app": "web", "track": "canary"}), pod.Namespace, pod.Labels)).To(BeFalse())
	g.Expect(Selects(svc("other", map[string]string{"app": "web"}), pod.Namespace, pod.Labels)).To(BeFalse(), "another namespace")
	g.Expect(Selects(svc("shop", nil), pod.Namespace, pod.Labels)).To(BeFalse(), "a Service without a selector selects no pod")
}

func TestPodIPs(t *testing.T) {
	g := NewWithT(t)
	pod := &corev1.Pod{Status: corev1.PodStatus{PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}}}
	g.Expect(PodIPs(pod)).To(HaveLen(2))
	g.Expect(PodIPs(&corev1.Pod{Status: corev1.PodStatus{PodIP: "10.0.0.2"}})).To(HaveLen(1))
	g.Expect(PodIPs(&corev1.Pod{})).To(BeEmpty())
}
