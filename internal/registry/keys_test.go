package registry_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/registry"
)

func TestParseService(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want registry.Service
		ok   bool
	}{
		{in: "shop/web", want: registry.Service{Namespace: "shop", Name: "web"}, ok: true},
		{in: "a/b-c.d", want: registry.Service{Namespace: "a", Name: "b-c.d"}, ok: true},
		{in: "web"},
		{in: ""},
		{in: "/web"},
		{in: "shop/"},
		{in: "/"},
		{in: "shop/web/x"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			g := NewWithT(t)
			s, err := registry.ParseService(tc.in)
			if !tc.ok {
				g.Expect(err).To(MatchError(ContainSubstring("want <namespace>/<name>")))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s).To(Equal(tc.want))
			g.Expect(s.String()).To(Equal(tc.in), "String is the inverse")
		})
	}
}

func TestServiceOfKey(t *testing.T) {
	svc := registry.Service{Namespace: "shop", Name: "web"}
	for _, tc := range []struct {
		name, key string
		want      registry.Service
		rest      string
		ok        bool
	}{
		{name: "instance", key: registry.InstanceKey(svc, mustAddrPort("198.18.0.7:8080")), want: svc, rest: "instances/198.18.0.7:8080", ok: true},
		{name: "revision", key: registry.RevisionKey(svc), want: svc, rest: "revision", ok: true},
		{name: "consumer", key: registry.ConsumerKey(svc, "caller-1"), want: svc, rest: "caller-1", ok: true},
		{name: "outside the prefix", key: "/other/services/shop/web/revision"},
		{name: "prefix only", key: registry.Prefix},
		{name: "no namespace", key: registry.Prefix + "services"},
		{name: "namespace only", key: registry.ServicesPrefix("shop")},
		{name: "no rest", key: registry.Prefix + "services/shop/web"},
		{name: "empty namespace", key: registry.Prefix + "services//web/revision"},
		{name: "empty service", key: registry.Prefix + "consumers/shop//c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s, rest, ok := registry.ServiceOfKey(tc.key)
			g.Expect(ok).To(Equal(tc.ok))
			if tc.ok {
				g.Expect(s).To(Equal(tc.want))
				g.Expect(rest).To(Equal(tc.rest))
			}
		})
	}
}

func TestCheckEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name      string
		endpoints []string
		err       string // "" when accepted
	}{
		{name: "http loopback", endpoints: []string{"http://127.0.0.1:2379"}},
		{name: "https loopback, trailing slash", endpoints: []string{"https://127.0.0.2:2379/"}},
		{name: "IPv6 loopback", endpoints: []string{"http://[::1]:2379"}},
		{name: "several", endpoints: []string{"http://127.0.0.1:2379", "http://127.0.0.1:2380"}},
		{name: "none", err: "no registry endpoints"},
		{name: "non-loopback", endpoints: []string{"http://10.0.0.1:2379"}, err: "not a loopback address"},
		{name: "a classic host's relay in the project's namespaces", endpoints: []string{"http://198.19.224.1:10352"}},
		{name: "one of several non-loopback", endpoints: []string{"http://127.0.0.1:2379", "http://192.168.0.1:2379"}, err: "not a loopback address"},
		{name: "just outside the project's namespaces", endpoints: []string{"http://198.20.0.1:2379"}, err: "not a loopback address"},
		{name: "host name", endpoints: []string{"http://localhost:2379"}, err: `"http://localhost:2379"`},
		{name: "no scheme", endpoints: []string{"127.0.0.1:2379"}, err: "want http://<ip>:<port>"},
		{name: "other scheme", endpoints: []string{"unix://127.0.0.1:2379"}, err: "want http://<ip>:<port>"},
		{name: "no port", endpoints: []string{"http://127.0.0.1"}, err: `"http://127.0.0.1"`},
		{name: "path", endpoints: []string{"http://127.0.0.1:2379/v3"}, err: `"http://127.0.0.1:2379/v3"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := registry.CheckEndpoints(tc.endpoints)
			if tc.err == "" {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
			}
		})
	}
}
