package podemu

import (
	"net/netip"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cafe-io/cafe/test/builders"
)

// runningPod is shop/web-0 (UID uid-1) as kwok starts it on ip.
func runningPod(image, ip string, ports ...int32) *corev1.Pod {
	pod := builders.Pod("shop", "web-0", image, ports...)
	pod.UID = "uid-1"
	builders.SetPodRunning(pod, ip)
	return pod
}

func TestWanted(t *testing.T) {
	const ip = "198.19.64.7"
	at := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(ip), port) }
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		ports  []netip.AddrPort
	}{
		{"a running container listens on each declared port", func(*corev1.Pod) {}, []netip.AddrPort{at(8080), at(9090)}},
		{"a UDP port is not listened on", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[1].Protocol = corev1.ProtocolUDP
		}, []netip.AddrPort{at(8080)}},
		{"an explicit TCP port is", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[1].Protocol = corev1.ProtocolTCP
		}, []netip.AddrPort{at(8080), at(9090)}},
		{"a pod without IP listens nowhere", func(p *corev1.Pod) { p.Status.PodIP = "" }, nil},
		{"a pending pod listens nowhere", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }, nil},
		{"a terminating pod listens nowhere", func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }, nil},
		{"a container not running listens nowhere", func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
		}, nil},
		{"a container without status listens nowhere", func(p *corev1.Pod) { p.Status.ContainerStatuses = nil }, nil},
		{"a container whose image is being changed in place listens nowhere", func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "example.com/demo:v2"
		}, nil},
		{"a host-network pod listens nowhere (its IP is its node's)", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := runningPod("example.com/demo:v1", ip, 8080, 9090)
			tc.mutate(pod)
			var got []netip.AddrPort
			for _, ep := range wanted(pod) {
				g.Expect(ep.UID).To(Equal(pod.UID))
				g.Expect(ep.Image).To(Equal("example.com/demo:v1"))
				got = append(got, ep.Address)
			}
			g.Expect(got).To(Equal(tc.ports))
		})
	}
}

func TestStopReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod) *corev1.Pod
		reason string
	}{
		{"the pod is gone", func(*corev1.Pod) *corev1.Pod { return nil }, "pod deleted"},
		{"another pod took the name", func(p *corev1.Pod) *corev1.Pod { p.UID = "uid-2"; return p }, "pod replaced"},
		{"the pod is being deleted", func(p *corev1.Pod) *corev1.Pod { p.DeletionTimestamp = ptr.To(metav1.Now()); return p }, "terminating"},
		{"the image changes in place", func(p *corev1.Pod) *corev1.Pod { p.Spec.Containers[0].Image = "demo:v2"; return p }, "the kubelet restarts it"},
		{"the container restarted", func(p *corev1.Pod) *corev1.Pod {
			p.Status.ContainerStatuses[0].RestartCount = 1
			return p
		}, "restartCount 0 to 1"},
		{"the container stopped", func(p *corev1.Pod) *corev1.Pod {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
			return p
		}, "not running"},
		{"the port is no longer declared", func(p *corev1.Pod) *corev1.Pod { p.Spec.Containers[0].Ports = nil; return p }, "no longer declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := runningPod("demo:v1", "198.19.64.7", 8080)
			eps := wanted(pod)
			g.Expect(eps).To(HaveLen(1))
			g.Expect(stopReason(eps[0], tc.mutate(pod))).To(ContainSubstring(tc.reason))
		})
	}
}

func TestGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		name             string
		spec, deletion   *int64
		limit, wantGrace time.Duration
	}{
		{"the spec's grace period", ptr.To[int64](10), nil, time.Minute, 10 * time.Second},
		{"the deletion's grace period wins", ptr.To[int64](10), ptr.To[int64](2), time.Minute, 2 * time.Second},
		{"30 s when the spec says nothing", nil, nil, time.Minute, 30 * time.Second},
		{"at most the limit", ptr.To[int64](600), nil, 30 * time.Second, 30 * time.Second},
		{"zero is zero: requests in flight are cut", ptr.To[int64](0), nil, time.Minute, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			pod := runningPod("demo:v1", "198.19.64.7")
			pod.Spec.TerminationGracePeriodSeconds, pod.DeletionGracePeriodSeconds = tc.spec, tc.deletion
			g.Expect(gracePeriod(pod, tc.limit)).To(Equal(tc.wantGrace))
		})
	}
}
