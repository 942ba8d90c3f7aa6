package registrar

import (
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/internal/traffic"
)

// Registrations computes the registrations of a published Service, keyed
// by address ("<ip>:<port>"): its Ready, live pods on every TCP port, and
// the ready endpoints of CAFE's slices of it. zoneOf names a node's zone.
func Registrations(svc *corev1.Service, pods []corev1.Pod, cafeSlices []discoveryv1.EndpointSlice, zoneOf func(node string) string) map[string]registry.Registration {
	out := map[string]registry.Registration{}
	for i := range pods {
		addPod(out, svc, &pods[i], zoneOf)
	}
	for i := range cafeSlices {
		addSlice(out, &cafeSlices[i])
	}
	return out
}

// addPod registers a pod the Service selects while it is Ready and not
// being deleted: what the EndpointSlice controller lists as ready.
func addPod(out map[string]registry.Registration, svc *corev1.Service, pod *corev1.Pod, zoneOf func(string) string) {
	if !traffic.Selects(svc, pod.Namespace, pod.Labels) || !pod.DeletionTimestamp.IsZero() || !podReady(pod) {
		return
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		port, ok := podPort(pod, sp)
		if !ok {
			continue
		}
		for _, ip := range traffic.PodIPs(pod) {
			ap := netip.AddrPortFrom(ip, uint16(port)).String()
			out[ap] = registry.Registration{Address: ap, PortName: sp.Name, Kind: registry.KindPod, Name: pod.Name, Zone: zoneOf(pod.Spec.NodeName)}
		}
	}
}

// addSlice registers the ready endpoints of one of CAFE's slices.
func addSlice(out map[string]registry.Registration, slice *discoveryv1.EndpointSlice) {
	if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
		return
	}
	for _, ep := range slice.Endpoints {
		if !endpointReady(ep) {
			continue
		}
		for _, sp := range slice.Ports {
			if sp.Port == nil || (sp.Protocol != nil && *sp.Protocol != corev1.ProtocolTCP) {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ap := netip.AddrPortFrom(ip.Unmap(), uint16(*sp.Port)).String()
				r := registry.Registration{Address: ap, Kind: registry.KindClassicInstance}
				if sp.Name != nil {
					r.PortName = *sp.Name
				}
				if ep.TargetRef != nil {
					r.Kind, r.Name = ep.TargetRef.Kind, ep.TargetRef.Name
				}
				if ep.Zone != nil {
					r.Zone = *ep.Zone
				}
				out[ap] = r
			}
		}
	}
}

// endpointReady: ready (unset means ready, as the API documents) and not
// terminating.
func endpointReady(ep discoveryv1.Endpoint) bool {
	c := ep.Conditions
	return (c.Ready == nil || *c.Ready) && (c.Terminating == nil || !*c.Terminating)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podPort resolves a Service port's target on a pod: a number is itself
// (zero: the Service port), a name is the container port of that name and
// protocol.
func podPort(pod *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, sp.Port > 0
		}
		return tp.IntVal, true
	}
	if n, err := strconv.Atoi(tp.StrVal); err == nil {
		return int32(n), n > 0 && n < 65536
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == tp.StrVal && pp == proto {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}
