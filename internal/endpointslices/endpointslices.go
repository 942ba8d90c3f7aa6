// Package endpointslices holds what CAFE's two EndpointSlice writers share:
// the InPlaceSet controller, which publishes its pods for a Service without
// a selector (spec.endpoints), and the classicendpoints controller, which
// publishes classic instances for Services that select them. Both group
// endpoints as the EndpointSlice controller does, by address family and
// by the port numbers the Service's ports resolve to.
package endpointslices

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// GroupKey identifies an address family and a resolution of a Service's
// ports: endpoints with the same key share slices.
func GroupKey(family discoveryv1.AddressType, ports []discoveryv1.EndpointPort) string {
	parts := []string{string(family)}
	for _, p := range ports {
		parts = append(parts, *p.Name+"/"+string(*p.Protocol)+"/"+strconv.Itoa(int(*p.Port)))
	}
	return strings.Join(parts, ",")
}

// Protocol is the port's protocol, TCP when unset.
func Protocol(p corev1.ServicePort) corev1.Protocol {
	if p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return p.Protocol
}

// Same: cur already holds what want says, in the fields CAFE writes
// (address type, endpoints, ports, labels, annotations, owners).
func Same(cur, want *discoveryv1.EndpointSlice) bool {
	return cur.AddressType == want.AddressType &&
		equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) &&
		equality.Semantic.DeepEqual(cur.Ports, want.Ports) &&
		equality.Semantic.DeepEqual(cur.Labels, want.Labels) &&
		equality.Semantic.DeepEqual(cur.Annotations, want.Annotations) &&
		equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences)
}
