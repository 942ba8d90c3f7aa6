package endpointslices_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cafe-io/cafe/internal/endpointslices"
)

func slice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Labels:          map[string]string{discoveryv1.LabelServiceName: "web"},
			Annotations:     map[string]string{"cafe.io/endpoint-group": "IPv4,http/TCP/8080"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "cafe.io/v1alpha1", Kind: "InPlaceSet", Name: "web-a", UID: "u1", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"127.0.1.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-a-0", UID: "p1"},
			NodeName:   ptr.To("node-1"),
			Zone:       ptr.To("zone-a"),
			Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-a"}}},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080), AppProtocol: ptr.To("http")}},
	}
}

// TestSameSeesEveryWrittenField changes one field at a time: Same must
// notice each change and agree with the API machinery's semantic equality
// (the reference it replaced), including that nil and empty are the same.
func TestSameSeesEveryWrittenField(t *testing.T) {
	changes := map[string]func(s *discoveryv1.EndpointSlice){
		"address type":     func(s *discoveryv1.EndpointSlice) { s.AddressType = discoveryv1.AddressTypeIPv6 },
		"an endpoint more": func(s *discoveryv1.EndpointSlice) { s.Endpoints = append(s.Endpoints, s.Endpoints[0]) },
		"address":          func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"127.0.1.2"} },
		"ready":            func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Conditions.Ready = ptr.To(false) },
		"ready unset":      func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Conditions.Ready = nil },
		"serving":          func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Conditions.Serving = ptr.To(false) },
		"terminating":      func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Conditions.Terminating = ptr.To(true) },
		"hostname":         func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Hostname = ptr.To("web-a-0") },
		"target uid":       func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].TargetRef.UID = "p2" },
		"target unset":     func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].TargetRef = nil },
		"topology":         func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].DeprecatedTopology = map[string]string{"k": "v"} },
		"node":             func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].NodeName = ptr.To("node-2") },
		"zone":             func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Zone = ptr.To("zone-b") },
		"hints":            func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Hints.ForZones[0].Name = "zone-b" },
		"node hints": func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].Hints.ForNodes = []discoveryv1.ForNode{{Name: "node-1"}}
		},
		"hints unset":    func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Hints = nil },
		"port name":      func(s *discoveryv1.EndpointSlice) { s.Ports[0].Name = ptr.To("https") },
		"port protocol":  func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = ptr.To(corev1.ProtocolUDP) },
		"port number":    func(s *discoveryv1.EndpointSlice) { s.Ports[0].Port = ptr.To[int32](8081) },
		"app protocol":   func(s *discoveryv1.EndpointSlice) { s.Ports[0].AppProtocol = nil },
		"no ports":       func(s *discoveryv1.EndpointSlice) { s.Ports = nil },
		"label":          func(s *discoveryv1.EndpointSlice) { s.Labels[discoveryv1.LabelServiceName] = "api" },
		"annotation":     func(s *discoveryv1.EndpointSlice) { s.Annotations["cafe.io/service-ports"] = "abc" },
		"owner uid":      func(s *discoveryv1.EndpointSlice) { s.OwnerReferences[0].UID = "u2" },
		"owner not ctrl": func(s *discoveryv1.EndpointSlice) { s.OwnerReferences[0].Controller = ptr.To(false) },
		"owner no block": func(s *discoveryv1.EndpointSlice) { s.OwnerReferences[0].BlockOwnerDeletion = nil },
		"owner kind":     func(s *discoveryv1.EndpointSlice) { s.OwnerReferences[0].Kind = "CafeDeployment" },
		"no owners":      func(s *discoveryv1.EndpointSlice) { s.OwnerReferences = nil },
		"endpoints reordered": func(s *discoveryv1.EndpointSlice) {
			s.Endpoints = append([]discoveryv1.Endpoint{{Addresses: []string{"127.0.1.9"}}}, s.Endpoints...)
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			cur, want := slice(), slice()
			change(want)
			if endpointslices.Same(cur, want) {
				t.Fatalf("Same reports no change after changing the %s", name)
			}
			if equality.Semantic.DeepEqual(cur, want) {
				t.Fatalf("the reference equality sees no change either: the case changes nothing")
			}
		})
	}

	// Fields CAFE does not write, and nil against empty, are no change.
	cur, want := slice(), slice()
	cur.ResourceVersion, cur.Generation = "42", 3
	cur.Endpoints[0].Hints.ForNodes = []discoveryv1.ForNode{}
	want.Endpoints[0].DeprecatedTopology = map[string]string{}
	if !endpointslices.Same(cur, want) {
		t.Fatalf("Same reports a change for fields CAFE does not write or for nil against empty")
	}
	empty := &discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{}, Ports: []discoveryv1.EndpointPort{}}
	if !endpointslices.Same(&discoveryv1.EndpointSlice{}, empty) || !equality.Semantic.DeepEqual(&discoveryv1.EndpointSlice{}, empty) {
		t.Fatalf("nil and empty endpoint lists must compare the same")
	}
}
