package podemu

import (
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Endpoint is one emulated container port: the process the pod's status
// says runs there. Two endpoints that differ in anything are two
// processes: the emulator stops the one and starts the other.
type Endpoint struct {
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	UID       types.UID `json:"uid"`
	Container string    `json:"container"`
	// Image is the image the container's status reports (equal to its
	// spec's while the endpoint listens).
	Image        string         `json:"image"`
	RestartCount int32          `json:"restartCount"`
	Address      netip.AddrPort `json:"address"`
}

// endpointKey identifies an endpoint across updates of its pod: a pod
// recreated under the same name has another UID, so it is another key.
type endpointKey struct {
	UID       types.UID
	Container string
	Port      uint16
}

func (e Endpoint) key() endpointKey {
	return endpointKey{UID: e.UID, Container: e.Container, Port: e.Address.Port()}
}

// wanted returns the endpoints that pod's status says are running: for
// each container that runs the image its spec asks for, each declared TCP
// port on the pod's IP. Host-network pods are left out: their IP is their
// node's.
func wanted(pod *corev1.Pod) []Endpoint {
	if pod.Spec.HostNetwork || podDown(pod) != "" {
		return nil
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		return nil
	}
	var out []Endpoint
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		st, why := containerUp(pod, c.Name)
		if why != "" {
			continue
		}
		for _, p := range c.Ports {
			if (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) || p.ContainerPort <= 0 || p.ContainerPort > 65535 {
				continue
			}
			out = append(out, Endpoint{
				Namespace: pod.Namespace, Pod: pod.Name, UID: pod.UID,
				Container: c.Name, Image: st.Image, RestartCount: st.RestartCount,
				Address: netip.AddrPortFrom(ip, uint16(p.ContainerPort)),
			})
		}
	}
	return out
}

// podDown says why no container of pod can be serving, or "" if some may.
func podDown(pod *corev1.Pod) string {
	switch {
	case pod.DeletionTimestamp != nil:
		return "pod is terminating (deletionTimestamp set: the app got SIGTERM)"
	case pod.Status.PodIP == "":
		return "pod has no IP"
	case pod.Status.Phase != corev1.PodRunning:
		return fmt.Sprintf("pod phase is %s", pod.Status.Phase)
	}
	return ""
}

// containerUp returns the status of pod's container name and "" when it
// runs the image its spec asks for; otherwise why it does not.
func containerUp(pod *corev1.Pod, name string) (corev1.ContainerStatus, string) {
	spec := ""
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			spec = c.Image
		}
	}
	for _, st := range pod.Status.ContainerStatuses {
		if st.Name != name {
			continue
		}
		switch {
		case st.State.Running == nil:
			return st, "container is not running"
		case spec != st.Image:
			// What a kubelet does on an in-place image update: it stops the
			// container, then starts it with the new image (kwok's stage
			// pod-image-restart reports both at once, restartCount+1).
			return st, fmt.Sprintf("container image changes in place (%s to %s): the kubelet restarts it", st.Image, spec)
		}
		return st, ""
	}
	return corev1.ContainerStatus{}, "container has no status"
}

// stopReason says why the process of ep stops, pod being what the API
// server now reports under ep's name (nil when it is gone).
func stopReason(ep Endpoint, pod *corev1.Pod) string {
	if pod == nil {
		return "pod deleted"
	}
	if pod.UID != ep.UID {
		return "pod replaced (new UID)"
	}
	if why := podDown(pod); why != "" {
		return why
	}
	st, why := containerUp(pod, ep.Container)
	switch {
	case why != "":
		return why
	case st.RestartCount != ep.RestartCount:
		return fmt.Sprintf("container restarted (restartCount %d to %d)", ep.RestartCount, st.RestartCount)
	case st.Image != ep.Image:
		return fmt.Sprintf("container image changed (%s to %s)", ep.Image, st.Image)
	case pod.Status.PodIP != ep.Address.Addr().String():
		return "pod IP changed"
	}
	return "port no longer declared"
}

// DefaultGracePeriod is a pod's termination grace period when its spec
// does not say (the API server's default too).
const DefaultGracePeriod = 30 * time.Second

// gracePeriod is how long pod's processes get to finish what they are
// answering once stopped: the grace period of its deletion if it is being
// deleted, else its spec's, at most limit.
func gracePeriod(pod *corev1.Pod, limit time.Duration) time.Duration {
	d := DefaultGracePeriod
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		d = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		d = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return max(min(d, limit), 0)
}
