package lossless_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
)

var (
	apiConfig *rest.Config
	apiClient client.WithWatch
)

func TestMain(m *testing.M) {
	os.Exit(framework.EnvtestMain(m, func(cfg *rest.Config) (err error) {
		apiConfig = cfg
		apiClient, err = framework.NewClient(cfg)
		return err
	}))
}

// servingPod creates a running, Ready pod with the traffic-ready gate open
// and its one container ready, as the kubelet would have reported it.
func servingPod(ctx context.Context, g Gomega, name string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "example.com/app:v1"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: cafev1alpha1.TrafficReadyCondition}},
		},
	}
	g.Expect(apiClient.Create(ctx, pod)).To(Succeed())
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:             corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "example.com/app:v1", Ready: true}},
		Conditions: []corev1.PodCondition{
			{Type: cafev1alpha1.TrafficReadyCondition, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	g.Expect(apiClient.Status().Update(ctx, pod)).To(Succeed())
	return pod
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func TestSetGateWritesTheReadyConditionTheKubeletWouldInTheSameWrite(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	pod := servingPod(ctx, g, "gate-and-ready")

	rv, err := lossless.SetGateVersion(ctx, apiClient, pod, corev1.ConditionFalse, lossless.ReasonDrainForUpdate, "draining")
	g.Expect(err).NotTo(HaveOccurred())
	closed := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), closed)).To(Succeed())
	g.Expect(closed.ResourceVersion).To(Equal(rv), "one write: the gate and Ready together")
	g.Expect(condition(closed, cafev1alpha1.TrafficReadyCondition).Status).To(Equal(corev1.ConditionFalse))
	g.Expect(condition(closed, corev1.PodReady).Status).To(Equal(corev1.ConditionFalse))
	g.Expect(condition(closed, corev1.PodReady).Reason).To(Equal("ReadinessGatesNotReady"))
	g.Expect(condition(closed, corev1.ContainersReady).Status).To(Equal(corev1.ConditionTrue), "other conditions untouched")

	rv, err = lossless.SetGateVersion(ctx, apiClient, closed, corev1.ConditionTrue, lossless.ReasonServing, "")
	g.Expect(err).NotTo(HaveOccurred())
	opened := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), opened)).To(Succeed())
	g.Expect(opened.ResourceVersion).To(Equal(rv))
	g.Expect(condition(opened, cafev1alpha1.TrafficReadyCondition).Status).To(Equal(corev1.ConditionTrue))
	g.Expect(condition(opened, corev1.PodReady).Status).To(Equal(corev1.ConditionTrue))
	g.Expect(condition(opened, corev1.PodReady).Reason).To(BeEmpty(), "the False reason is cleared")
	g.Expect(condition(opened, corev1.PodReady).Message).To(BeEmpty())
}

func TestSetGateLeavesReadyToTheKubeletWhenThePodChangedSinceItWasRead(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	pod := servingPod(ctx, g, "changed-since-read")
	g.Expect(lossless.SetGate(ctx, apiClient, pod, corev1.ConditionFalse, lossless.ReasonDrainForUpdate, "draining")).To(Succeed())
	read := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), read)).To(Succeed())

	// The kubelet reports the container unready after the controller read
	// the pod: opening the gate from that read must not claim Ready.
	unready := read.DeepCopy()
	unready.Status.ContainerStatuses[0].Ready = false
	g.Expect(apiClient.Status().Update(ctx, unready)).To(Succeed())

	g.Expect(lossless.SetGate(ctx, apiClient, read, corev1.ConditionTrue, lossless.ReasonServing, "")).To(Succeed())
	after := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), after)).To(Succeed())
	g.Expect(condition(after, cafev1alpha1.TrafficReadyCondition).Status).To(Equal(corev1.ConditionTrue), "the gate is written alone")
	g.Expect(condition(after, corev1.PodReady).Status).To(Equal(corev1.ConditionFalse))
	g.Expect(after.Status.ContainerStatuses[0].Ready).To(BeFalse())
}
