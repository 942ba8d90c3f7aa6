package builders

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Pod is a pod ns/name scheduled on the simulated node node-a, with one
// container "app" running image and declaring ports (TCP), and a grace
// period of 30 s. Being scheduled, it is deleted gracefully by the API
// server (deletionTimestamp first), as a kubelet's pod is.
func Pod(ns, name, image string, ports ...int32) *corev1.Pod {
	c := corev1.Container{Name: "app", Image: image}
	for _, p := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      "node-a",
			Containers:                    []corev1.Container{c},
			TerminationGracePeriodSeconds: ptr.To[int64](30),
		},
	}
}

// SetPodRunning writes into pod the status kwok's pod-start stage
// (internal/controlplane/kwokstages) writes: Running on ip, every
// container running its spec's image, restartCount 0.
func SetPodRunning(pod *corev1.Pod, ip string) {
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "kwok://" + c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

// RestartPodContainers writes into pod what kwok's pod-image-restart stage
// writes once a container's spec image changed, for every container: its
// spec's image, restartCount+1, running again.
func RestartPodContainers(pod *corev1.Pod) {
	for i, c := range pod.Spec.Containers {
		st := &pod.Status.ContainerStatuses[i]
		st.Image, st.ImageID = c.Image, "kwok://"+c.Image
		st.RestartCount++
		st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	}
}
