package gateway

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func backend(name string, mod func(*gatewayv1.BackendObjectReference)) gatewayv1.BackendObjectReference {
	ref := gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(80))}
	if mod != nil {
		mod(&ref)
	}
	return ref
}

func TestRouteBackendServices(t *testing.T) {
	otherNS := func(r *gatewayv1.BackendObjectReference) { r.Namespace = ptr.To(gatewayv1.Namespace("shared")) }
	notAService := func(r *gatewayv1.BackendObjectReference) {
		r.Group, r.Kind = ptr.To(gatewayv1.Group("example.com")), ptr.To(gatewayv1.Kind("Bucket"))
	}
	explicitCore := func(r *gatewayv1.BackendObjectReference) {
		r.Group, r.Kind = ptr.To(gatewayv1.Group("")), ptr.To(gatewayv1.Kind("Service"))
	}
	tests := []struct {
		name  string
		rules []gatewayv1.HTTPRouteRule
		want  []string
	}{
		{"a backend defaults to a Service in the route's namespace", []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{
			{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("web", nil)}},
		}}}, []string{"shop/web"}},
		{"an explicit core Service and another namespace count; other kinds do not", []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{
			{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("a", explicitCore)}},
			{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("b", otherNS)}},
			{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("c", notAService)}},
		}}}, []string{"shared/b", "shop/a"}},
		{"mirrors and external auth receive requests too, on rules and on backends", []gatewayv1.HTTPRouteRule{{
			Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: backend("mirror", nil)}}},
			BackendRefs: []gatewayv1.HTTPBackendRef{{
				BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("web", nil)},
				Filters:    []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExternalAuth, ExternalAuth: &gatewayv1.HTTPExternalAuthFilter{BackendRef: backend("auth", nil)}}},
			}},
		}}, []string{"shop/auth", "shop/mirror", "shop/web"}},
		{"a Service named twice is listed once", []gatewayv1.HTTPRouteRule{
			{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("web", nil)}}}},
			{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("web", nil)}}}},
		}, []string{"shop/web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, Spec: gatewayv1.HTTPRouteSpec{Rules: tt.rules}}
			NewWithT(t).Expect(routeBackendServices(route)).To(Equal(tt.want))
		})
	}
}

func TestRouteParentGateways(t *testing.T) {
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{
		{Name: "local"},
		{Name: "edge", Namespace: ptr.To(gatewayv1.Namespace("infra")), SectionName: ptr.To(gatewayv1.SectionName("https"))},
		{Name: "explicit", Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: ptr.To(gatewayv1.Kind("Gateway"))},
		// A mesh (GAMMA) parent is a Service, not a gateway.
		{Name: "web", Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service"))},
	}}}}
	NewWithT(t).Expect(routeParentGateways(route)).To(Equal([]string{"infra/edge", "shop/explicit", "shop/local"}))
}

func TestServerAddr(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want string
		ok   bool
		err  bool
	}{
		{"http://10.0.0.7:8080", "10.0.0.7:8080", true, false},
		{"http://10.0.0.7", "10.0.0.7:80", true, false},
		{"https://10.0.0.7", "10.0.0.7:443", true, false},
		{"h2c://[fd00::7]:9000", "[fd00::7]:9000", true, false},
		{"http://backend.svc:80", "", false, false},
		{"http://10.0.0.7:notaport", "", false, true},
	} {
		t.Run(tt.url, func(t *testing.T) {
			ap, ok, err := serverAddr(tt.url)
			if (err != nil) != tt.err || ok != tt.ok || (ok && ap.String() != tt.want) {
				t.Fatalf("serverAddr(%q) = %v, %v, %v; want %s, %v, error %v", tt.url, ap, ok, err, tt.want, tt.ok, tt.err)
			}
		})
	}
}
