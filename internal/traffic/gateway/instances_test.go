package gateway

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
)

// fixedObserver answers every read with its addresses (or its error) and
// counts the reads.
type fixedObserver struct {
	addrs []netip.AddrPort
	err   error
	reads atomic.Int32
}

func (o *fixedObserver) Backends(context.Context) ([]netip.AddrPort, error) {
	o.reads.Add(1)
	return o.addrs, o.err
}

func (o *fixedObserver) String() string { return "the fixed gateway" }

// testProvider is a Provider reading objs through a fake client with the
// provider's indexes, asking obs.
func testProvider(obs Observer, objs ...client.Object) *Provider {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithIndex(&gatewayv1.HTTPRoute{}, routeBackendIndex, func(o client.Object) []string {
			return routeBackendServices(o.(*gatewayv1.HTTPRoute))
		}).
		Build()
	return &Provider{reader: c, controllerName: "example.com/ours", reads: &reads{observer: obs, minInterval: time.Millisecond}}
}

func instanceOn(host, address string, port int32) *cafev1alpha1.ClassicInstance {
	return &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec:       cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: cafev1alpha1.ClassicArtifact{Port: port}},
		Status:     cafev1alpha1.ClassicInstanceStatus{Address: address},
	}
}

func hostAt(name, address string) *cafev1alpha1.ClassicHost {
	return &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.ClassicHostSpec{Address: address}}
}

// An instance is its address and port: the gateway sending to its host's
// IP on another port (another app's instance on the same host) does not
// route to it.
func TestRoutesInstanceMatchesAddressAndPort(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name     string
		inst     *cafev1alpha1.ClassicInstance
		backends []netip.AddrPort
		routed   bool
		where    string
	}{
		{"its address and port listed", instanceOn("vm-1", "10.0.0.5:9090", 9090),
			[]netip.AddrPort{ap("10.0.0.5:8080"), ap("10.0.0.5:9090")}, true, "sends to 10.0.0.5:9090"},
		{"its host's IP listed on another port only", instanceOn("vm-1", "10.0.0.5:9090", 9090),
			[]netip.AddrPort{ap("10.0.0.5:8080"), ap("10.0.0.6:9090")}, false, "sends to 10.0.0.5 on port(s) [8080]"},
		{"nothing on its IP", instanceOn("vm-1", "10.0.0.5:9090", 9090),
			[]netip.AddrPort{ap("10.0.0.6:9090")}, false, "lists none of [10.0.0.5:9090]"},
		{"no status.address: the host's address and the spec's port", instanceOn("vm-2", "", 9090),
			[]netip.AddrPort{ap("10.0.0.7:9090")}, true, "sends to 10.0.0.7:9090"},
		{"no status.address, the host's IP on another port only", instanceOn("vm-2", "", 9090),
			[]netip.AddrPort{ap("10.0.0.7:8080")}, false, "sends to 10.0.0.7 on port(s) [8080]"},
		{"a status.address the agent has not updated yet: the host's new one counts too", instanceOn("vm-2", "10.0.0.5:9090", 9090),
			[]netip.AddrPort{ap("10.0.0.7:9090")}, true, "sends to 10.0.0.7:9090"},
		{"an IPv6 host", instanceOn("vm-6", "", 9090),
			[]netip.AddrPort{ap("[fd00::7]:9090")}, true, "sends to [fd00::7]:9090"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obs := &fixedObserver{addrs: tt.backends}
			p := testProvider(obs, hostAt("vm-2", "10.0.0.7"), hostAt("vm-6", "fd00::7"))
			routed, where, err := p.RoutesInstance(context.Background(), tt.inst)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(routed).To(Equal(tt.routed))
			g.Expect(where).To(ContainSubstring(tt.where))
		})
	}
}

// An instance with no address (never reported, its host unknown) cannot
// be sent to: not routed, without asking the gateway. A gateway that does
// not answer is no answer.
func TestRoutesInstanceWithoutAnAddressOrAnAnswer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	obs := &fixedObserver{addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:9090")}}
	p := testProvider(obs)
	routed, where, err := p.RoutesInstance(ctx, instanceOn("vm-unknown", "", 9090))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(routed).To(BeFalse())
	g.Expect(where).To(ContainSubstring("no address"))
	g.Expect(obs.reads.Load()).To(BeZero())

	obs.err = errors.New("connection refused")
	_, _, err = p.RoutesInstance(ctx, instanceOn("vm-unknown", "10.0.0.5:9090", 9090))
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
}

// Pods and instances are served by the same rule: a route of a Gateway of
// ours sends to a Service of their namespace selecting their labels.
func TestServesInstanceLikeAPod(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	class := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "ours"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "example.com/ours"}}
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "gw"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "ours"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
			Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: backend("web", nil)}}}}},
		},
	}
	p := testProvider(&fixedObserver{}, class, gw, svc, route)

	inst := instanceOn("vm-1", "", 9090)
	g.Expect(p.ServesInstance(ctx, inst)).To(BeTrue())
	pod := &corev1.Pod{ObjectMeta: inst.ObjectMeta}
	g.Expect(p.Serves(ctx, pod)).To(BeTrue())

	inst.Labels = map[string]string{"app": "other"}
	g.Expect(p.ServesInstance(ctx, inst)).To(BeFalse(), "no Service selects it")
	inst = instanceOn("vm-1", "", 9090)
	inst.Namespace = "elsewhere"
	g.Expect(p.ServesInstance(ctx, inst)).To(BeFalse(), "the Service is of another namespace")
}
