package registry

import (
	"net/netip"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cafe-io/cafe/internal/registry"
)

func kv(key, value string, modRev int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: []byte(value), ModRevision: modRev}
}

func TestViewRoutes(t *testing.T) {
	api := registry.Service{Namespace: "shop", Name: "api"}
	web := registry.Service{Namespace: "shop", Name: "web"}
	services := []*mvccpb.KeyValue{
		kv(registry.InstancesPrefix(api)+"10.0.0.1:8080", `{"address":"10.0.0.1:8080","kind":"Pod","name":"api-0"}`, 5),
		kv(registry.RevisionKey(api), "registrar", 9),
		kv(registry.RevisionKey(web), "registrar", 12),
	}
	is := func(addr string) func(netip.AddrPort) bool {
		return func(ap netip.AddrPort) bool { return ap == netip.MustParseAddrPort(addr) }
	}
	for _, tt := range []struct {
		name      string
		object    string
		consumers []*mvccpb.KeyValue
		routed    bool
		why       string
	}{
		{name: "registered", object: "10.0.0.1:8080", routed: true, why: "is registered in shop/api as 10.0.0.1:8080"},
		{name: "another port of the same IP is another instance", object: "10.0.0.1:9090", routed: false, why: "all 0 live consumers"},
		{name: "no consumers", object: "10.0.0.2:8080", routed: false},
		{name: "every consumer caught up", object: "10.0.0.2:8080", routed: false, consumers: []*mvccpb.KeyValue{
			kv(registry.ConsumerKey(api, "a"), `{"revision":9}`, 10), kv(registry.ConsumerKey(web, "b"), `{"revision":14}`, 15)}, why: "all 2 live consumers"},
		{name: "a consumer behind its service's latest change", object: "10.0.0.2:8080", routed: true, consumers: []*mvccpb.KeyValue{
			kv(registry.ConsumerKey(api, "a"), `{"revision":9}`, 10), kv(registry.ConsumerKey(web, "b"), `{"revision":11,"consumer":"demo-app b"}`, 15)},
			why: "consumer b (demo-app b) of shop/web has applied revision 11, before the service's latest change at 12"},
		{name: "a consumer of a service without changes", object: "10.0.0.2:8080", routed: false, consumers: []*mvccpb.KeyValue{
			kv(registry.ConsumerKey(registry.Service{Namespace: "shop", Name: "quiet"}, "c"), `{"revision":1}`, 3)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			v, err := NewView(20, services, tt.consumers)
			g.Expect(err).NotTo(HaveOccurred())
			routed, why := v.Routes(is(tt.object))
			g.Expect(routed).To(Equal(tt.routed), why)
			g.Expect(why).To(ContainSubstring(tt.why))
		})
	}
}

// A value that does not decode fails the read: no decision on part of the
// registry.
func TestViewRefusesUndecodableValues(t *testing.T) {
	g := NewWithT(t)
	api := registry.Service{Namespace: "shop", Name: "api"}
	_, err := NewView(3, []*mvccpb.KeyValue{kv(registry.InstancesPrefix(api)+"x", `{"address":"nonsense"}`, 2)}, nil)
	g.Expect(err).To(MatchError(ContainSubstring("address")))
	_, err = NewView(3, nil, []*mvccpb.KeyValue{kv(registry.ConsumerKey(api, "a"), `{`, 2)})
	g.Expect(err).To(HaveOccurred())
	g.Expect(strings.Contains(err.Error(), registry.ConsumerKey(api, "a"))).To(BeTrue(), err.Error())
}
