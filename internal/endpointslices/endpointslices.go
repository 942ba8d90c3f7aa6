// Package endpointslices holds what CAFE's two EndpointSlice writers share:
// the InPlaceSet controller, which publishes its pods for a Service without
// a selector (spec.endpoints), and the classicendpoints controller, which
// publishes classic instances for Services that select them. Both group
// endpoints as the EndpointSlice controller does, by address family and
// by the port numbers the Service's ports resolve to.
package endpointslices

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// (address type, endpoints, ports, labels, annotations, owners). Written
// out field by field rather than by reflection: a set compares every one
// of its slices on most reconciles, and reflection was a tenth of CAFE's
// CPU during a release. A nil and an empty list or map are the same, as
// the API server stores them.
func Same(cur, want *discoveryv1.EndpointSlice) bool {
	return cur.AddressType == want.AddressType &&
		slices.EqualFunc(cur.Endpoints, want.Endpoints, sameEndpoint) &&
		slices.EqualFunc(cur.Ports, want.Ports, samePort) &&
		maps.Equal(cur.Labels, want.Labels) &&
		maps.Equal(cur.Annotations, want.Annotations) &&
		slices.EqualFunc(cur.OwnerReferences, want.OwnerReferences, sameOwner)
}

func sameEndpoint(a, b discoveryv1.Endpoint) bool {
	return slices.Equal(a.Addresses, b.Addresses) &&
		samePtr(a.Conditions.Ready, b.Conditions.Ready) &&
		samePtr(a.Conditions.Serving, b.Conditions.Serving) &&
		samePtr(a.Conditions.Terminating, b.Conditions.Terminating) &&
		samePtr(a.Hostname, b.Hostname) &&
		samePtr(a.TargetRef, b.TargetRef) &&
		maps.Equal(a.DeprecatedTopology, b.DeprecatedTopology) &&
		samePtr(a.NodeName, b.NodeName) &&
		samePtr(a.Zone, b.Zone) &&
		sameHints(a.Hints, b.Hints)
}

func sameHints(a, b *discoveryv1.EndpointHints) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.ForZones, b.ForZones) && slices.Equal(a.ForNodes, b.ForNodes)
}

func samePort(a, b discoveryv1.EndpointPort) bool {
	return samePtr(a.Name, b.Name) && samePtr(a.Protocol, b.Protocol) &&
		samePtr(a.Port, b.Port) && samePtr(a.AppProtocol, b.AppProtocol)
}

func sameOwner(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		samePtr(a.Controller, b.Controller) && samePtr(a.BlockOwnerDeletion, b.BlockOwnerDeletion)
}

// samePtr: both unset, or both set to equal values.
func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
