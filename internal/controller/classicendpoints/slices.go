package classicendpoints

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/endpointslices"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// EndpointSlices CAFE writes (cafev1alpha1.EndpointSliceManagedBy).
const ManagedBy = cafev1alpha1.EndpointSliceManagedBy

// MaxEndpointsPerSlice is the most endpoints one slice holds, as for the
// EndpointSlice controller's default.
const MaxEndpointsPerSlice = 100

// desiredSlices are the EndpointSlices that list svc's classic instances:
// every instance its selector matches that serves one of its ports, on a
// host CAFE knows, grouped (as the EndpointSlice controller groups pods) by
// address family and by the port numbers the Service's ports resolve to,
// at most MaxEndpointsPerSlice to a slice. Deterministic: the same inputs
// give the same slices, names included.
func desiredSlices(svc *corev1.Service, instances []cafev1alpha1.ClassicInstance, hosts map[string]*cafev1alpha1.ClassicHost) []discoveryv1.EndpointSlice {
	type group struct {
		family discoveryv1.AddressType
		ports  []discoveryv1.EndpointPort
		eps    []discoveryv1.Endpoint
	}
	groups := map[string]*group{}
	for i := range instances {
		inst := &instances[i]
		host := hosts[inst.Spec.HostName]
		if host == nil {
			continue
		}
		family, ok := addressType(host.Spec.Address)
		ports := servicePorts(svc, inst)
		if !ok || len(ports) == 0 {
			continue
		}
		key := endpointslices.GroupKey(family, ports)
		if groups[key] == nil {
			groups[key] = &group{family: family, ports: ports}
		}
		groups[key].eps = append(groups[key].eps, endpoint(inst, host))
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []discoveryv1.EndpointSlice
	for _, k := range keys {
		g := groups[k]
		slices.SortFunc(g.eps, func(a, b discoveryv1.Endpoint) int { return strings.Compare(a.TargetRef.Name, b.TargetRef.Name) })
		for chunk := 0; chunk*MaxEndpointsPerSlice < len(g.eps); chunk++ {
			eps := g.eps[chunk*MaxEndpointsPerSlice : min((chunk+1)*MaxEndpointsPerSlice, len(g.eps))]
			out = append(out, discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: svc.Namespace,
					Name:      sliceName(svc.Name, k, chunk),
					Labels: map[string]string{
						discoveryv1.LabelServiceName: svc.Name,
						discoveryv1.LabelManagedBy:   ManagedBy,
					},
				},
				AddressType: g.family,
				Endpoints:   eps,
				Ports:       g.ports,
			})
		}
	}
	return out
}

// servicePorts are svc's ports that reach inst: a targetPort equal to the
// instance's port number or to its port's name (a Service's targetPort
// defaults to its port).
func servicePorts(svc *corev1.Service, inst *cafev1alpha1.ClassicInstance) []discoveryv1.EndpointPort {
	a := inst.Spec.Artifact
	var out []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		matches := target.IntVal == a.Port && target.StrVal == "" || target.StrVal != "" && target.StrVal == a.PortName
		if !matches {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{
			Name: ptr.To(p.Name), Protocol: ptr.To(endpointslices.Protocol(p)), Port: ptr.To(a.Port), AppProtocol: p.AppProtocol,
		})
	}
	return out
}

// endpoint is inst on host: ready while its health check passes for its
// current spec on a Ready host, its traffic gate is open and it is not
// being deleted; serving while all but the last hold. An instance on a
// host that is not Ready (its heartbeat stale, its address unreachable)
// leaves traffic, as a pod on a node that is not Ready does; one whose
// gate CAFE closed leaves it as a pod whose cafe.io/traffic-ready
// condition is False does.
func endpoint(inst *cafev1alpha1.ClassicInstance, host *cafev1alpha1.ClassicHost) discoveryv1.Endpoint {
	healthy := inst.IsReady() && inst.GateOpen() &&
		meta.IsStatusConditionTrue(host.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition)
	terminating := !inst.DeletionTimestamp.IsZero()
	return discoveryv1.Endpoint{
		Addresses: []string{host.Spec.Address},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       ptr.To(healthy && !terminating),
			Serving:     ptr.To(healthy),
			Terminating: ptr.To(terminating),
		},
		TargetRef: &corev1.ObjectReference{
			APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicInstance",
			Namespace: inst.Namespace, Name: inst.Name, UID: inst.UID,
		},
		Zone: ptr.To(host.Spec.Zone),
	}
}

// addressType is the slice family of a host address; false for an address
// the API server refuses in an EndpointSlice (loopback, link-local,
// unspecified: ValidateEndpointIP), such as the loopback addresses of the
// local control plane's classic hosts when they run without network
// namespaces of their own.
func addressType(address string) (discoveryv1.AddressType, bool) {
	ip, err := netip.ParseAddr(address)
	switch {
	case err != nil, ip.IsLoopback(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsUnspecified():
		return "", false
	case ip.Is4():
		return discoveryv1.AddressTypeIPv4, true
	default:
		return discoveryv1.AddressTypeIPv6, true
	}
}

// sliceName is <service>-cafe-<hash of the group>[-<chunk>], at most 63
// characters.
func sliceName(service, key string, chunk int) string {
	sum := sha256.Sum256([]byte(key))
	name := fmt.Sprintf("%s-cafe-%s", service[:min(len(service), 40)], hex.EncodeToString(sum[:])[:10])
	if chunk > 0 {
		name += "-" + strconv.Itoa(chunk)
	}
	return name
}
