package lossless

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// runningPod is a running pod with one container, the traffic-ready gate and
// optionally a second gate, in the given Ready state.
func runningPod(containerReady bool, ready corev1.ConditionStatus, otherGate *corev1.ConditionStatus) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "42"},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: cafev1alpha1.TrafficReadyCondition}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: containerReady}},
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}},
		},
	}
	if otherGate != nil {
		p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: "example.com/lb"})
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/lb", Status: *otherGate})
	}
	return p
}

func TestReadyFollowingGateIsWhatTheKubeletWouldCompute(t *testing.T) {
	trueStatus, falseStatus := corev1.ConditionTrue, corev1.ConditionFalse
	noContainers := runningPod(true, corev1.ConditionFalse, nil)
	noContainers.Status.ContainerStatuses = nil
	pending := runningPod(true, corev1.ConditionFalse, nil)
	pending.Status.Phase = corev1.PodPending
	containersNotReady := runningPod(true, corev1.ConditionFalse, nil)
	containersNotReady.Status.Conditions = append(containersNotReady.Status.Conditions, corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse})

	cases := []struct {
		name      string
		pod       *corev1.Pod
		gate      corev1.ConditionStatus
		wantWrite bool
		want      corev1.ConditionStatus
	}{
		{"closing the gate of a Ready pod makes it not Ready", runningPod(true, corev1.ConditionTrue, nil), corev1.ConditionFalse, true, corev1.ConditionFalse},
		{"closing the gate of a pod already not Ready writes no Ready", runningPod(true, corev1.ConditionFalse, nil), corev1.ConditionFalse, false, ""},
		{"opening the gate of a pod whose containers are ready makes it Ready", runningPod(true, corev1.ConditionFalse, nil), corev1.ConditionTrue, true, corev1.ConditionTrue},
		{"opening the gate while a container is not ready leaves Ready to the kubelet", runningPod(false, corev1.ConditionFalse, nil), corev1.ConditionTrue, false, ""},
		{"opening the gate with no container status leaves Ready to the kubelet", noContainers, corev1.ConditionTrue, false, ""},
		{"opening the gate of a pod not running leaves Ready to the kubelet", pending, corev1.ConditionTrue, false, ""},
		{"opening the gate while ContainersReady is False leaves Ready to the kubelet", containersNotReady, corev1.ConditionTrue, false, ""},
		{"opening the gate while another gate is False leaves Ready to the kubelet", runningPod(true, corev1.ConditionFalse, &falseStatus), corev1.ConditionTrue, false, ""},
		{"opening the gate when every other gate is True makes it Ready", runningPod(true, corev1.ConditionFalse, &trueStatus), corev1.ConditionTrue, true, corev1.ConditionTrue},
		{"opening the gate of a pod already Ready writes no Ready", runningPod(true, corev1.ConditionTrue, nil), corev1.ConditionTrue, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, write := ReadyFollowingGate(tc.pod, tc.gate, metav1.Now())
			g.Expect(write).To(Equal(tc.wantWrite))
			if tc.wantWrite {
				g.Expect(got.Type).To(Equal(corev1.PodReady))
				g.Expect(got.Status).To(Equal(tc.want))
			}
		})
	}
}
