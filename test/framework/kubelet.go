package framework

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/lossless"
)

// Kubelet plays, through the API, the kubelet duties whose timing a
// controller test decides: running a pod's containers with the images its
// spec names. (GateKubelet plays the one duty that follows the controller:
// Ready.)
type Kubelet struct{ Client client.Client }

// RunContainers reports the pod Running, every container running the image
// its spec names and ready since since. For a pod that runs already and
// whose images changed in place, that is a restart with the new images:
// restart counts go up, and ContainersReady keeps its transition time.
func (k Kubelet) RunContainers(ctx context.Context, g Gomega, pod *corev1.Pod, since time.Time) {
	g.Expect(PatchPodStatus(ctx, k.Client, pod, runningStatus(pod, metav1.NewTime(since)))).To(Succeed())
}

// CatchUp runs the containers of every pod of the namespace that does not
// yet report the images of its spec (new pods, and pods updated in place),
// as ready now. It leaves pods being deleted alone, as a kubelet starts
// nothing for them, and a pod deleted meanwhile is no error. Call it inside
// Eventually, so it catches up with the controllers.
func (k Kubelet) CatchUp(ctx context.Context, g Gomega, ns string) {
	list := &corev1.PodList{}
	g.Expect(k.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	for i := range list.Items {
		pod := &list.Items[i]
		if RunsSpecImages(pod) || !pod.DeletionTimestamp.IsZero() {
			continue
		}
		g.Expect(client.IgnoreNotFound(PatchPodStatus(ctx, k.Client, pod, runningStatus(pod, metav1.Now())))).To(Succeed())
	}
}

// runningStatus is the status patch of RunContainers.
func runningStatus(pod *corev1.Pod, since metav1.Time) map[string]any {
	restarts := map[string]int32{}
	for _, s := range pod.Status.ContainerStatuses {
		restarts[s.Name] = s.RestartCount + 1
	}
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: ImageID(c.Image), Ready: true, Started: ptr.To(true), RestartCount: restarts[c.Name],
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: since}},
		})
	}
	status := map[string]any{"phase": corev1.PodRunning, "containerStatuses": statuses}
	if pod.Status.PodIP == "" {
		ip := PodIP(pod)
		status["podIP"], status["podIPs"] = ip, []corev1.PodIP{{IP: ip}}
	}
	if c := PodCondition(pod, corev1.ContainersReady); c == nil || c.Status != corev1.ConditionTrue {
		status["conditions"] = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: since}}
	}
	return status
}

// PodIP is the address the kubelet reports for a pod, derived from its
// name in 198.18.0.0/15 (reserved for benchmarks, RFC 2544): an
// EndpointSlice refuses loopback addresses, and nothing in a controller
// test sends these pods a packet.
func PodIP(pod *corev1.Pod) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pod.Namespace + "/" + pod.Name))
	n := h.Sum32()
	return fmt.Sprintf("198.%d.%d.%d", 18+n>>16&1, n>>8&0xff, n&0xff)
}

// ImageID is what the fake container runtime reports for an image.
func ImageID(image string) string { return fmt.Sprintf("sha256:%x", image) }

// RunsSpecImages reports whether the kubelet reports every container running
// the image the pod's spec names.
func RunsSpecImages(pod *corev1.Pod) bool {
	reported := map[string]string{}
	for _, s := range pod.Status.ContainerStatuses {
		reported[s.Name] = s.Image
	}
	for _, c := range pod.Spec.Containers {
		if reported[c.Name] != c.Image {
			return false
		}
	}
	return true
}

// Serving reports whether the pod's traffic gate is open and the kubelet
// reports it Ready.
func Serving(pod *corev1.Pod) bool {
	ready := PodCondition(pod, corev1.PodReady)
	return lossless.GateOpen(pod) && ready != nil && ready.Status == corev1.ConditionTrue
}
