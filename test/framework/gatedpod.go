package framework

import (
	"context"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// RunningGatedPod creates a running pod listing CAFE's traffic-ready gate,
// its one container ready, as a kubelet would have reported it: the gate
// and Ready both at gate (ContainersReady True).
func RunningGatedPod(ctx context.Context, g Gomega, c client.Client, ns, name string, gate corev1.ConditionStatus) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "example.com/app:v1"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: cafev1alpha1.TrafficReadyCondition}},
		},
	}
	g.Expect(c.Create(ctx, pod)).To(Succeed())
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:             corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "example.com/app:v1", Ready: true}},
		Conditions: []corev1.PodCondition{
			{Type: cafev1alpha1.TrafficReadyCondition, Status: gate, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: gate, LastTransitionTime: now},
		},
	}
	g.Expect(c.Status().Update(ctx, pod)).To(Succeed())
	return pod
}
