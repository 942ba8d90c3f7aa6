package lossless_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	return servingPodIn(ctx, g, "default", name)
}

// servingPodIn is servingPod in namespace ns.
func servingPodIn(ctx context.Context, g Gomega, ns, name string) *corev1.Pod {
	return framework.RunningGatedPod(ctx, g, apiClient, ns, name, corev1.ConditionTrue)
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

func TestSetGateDoesNotOpenFromAReadThePodHasChangedSince(t *testing.T) {
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
	err := lossless.SetGate(ctx, apiClient, read, corev1.ConditionTrue, lossless.ReasonServing, "")
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)

	// Another controller closes the gate for a deletion after this one read
	// the pod: opening from the read would undo that drain.
	read = &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), read)).To(Succeed())
	g.Expect(lossless.SetGate(ctx, apiClient, read.DeepCopy(), corev1.ConditionFalse, lossless.ReasonDrainForDelete, "draining to delete it")).To(Succeed())
	err = lossless.SetGate(ctx, apiClient, read, corev1.ConditionTrue, lossless.ReasonServing, "")
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)

	after := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), after)).To(Succeed())
	g.Expect(condition(after, cafev1alpha1.TrafficReadyCondition).Status).To(Equal(corev1.ConditionFalse))
	g.Expect(condition(after, cafev1alpha1.TrafficReadyCondition).Reason).To(Equal(lossless.ReasonDrainForDelete))
	g.Expect(condition(after, corev1.PodReady).Status).To(Equal(corev1.ConditionFalse))
}

// A StatefulSet recreates a pod under the same name: a gate write decided
// on the pod that is gone must not land on its successor.
func TestSetGateDoesNotWriteToAPodRecreatedUnderTheSameName(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	old := servingPod(ctx, g, "recreated")
	g.Expect(apiClient.Delete(ctx, old, client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(apiClient.Get(ctx, client.ObjectKeyFromObject(old), &corev1.Pod{}))
	}).Should(BeTrue())
	successor := servingPod(ctx, g, "recreated")
	g.Expect(successor.UID).NotTo(Equal(old.UID))

	err := lossless.SetGate(ctx, apiClient, old, corev1.ConditionFalse, lossless.ReasonDrainForUpdate, "draining")
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)

	after := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(successor), after)).To(Succeed())
	g.Expect(after.ResourceVersion).To(Equal(successor.ResourceVersion), "the successor is untouched")
	g.Expect(condition(after, cafev1alpha1.TrafficReadyCondition).Status).To(Equal(corev1.ConditionTrue))
}
