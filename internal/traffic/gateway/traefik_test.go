package gateway_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/traefikproc"
)

// dynamicConfig is a Traefik file-provider configuration with one router
// per service, each service load-balancing over the given server URLs,
// and a weighted service (no servers of its own) over all of them.
func dynamicConfig(services map[string][]string) string {
	var b strings.Builder
	b.WriteString("http:\n  routers:\n")
	for name := range services {
		fmt.Fprintf(&b, "    %s:\n      entryPoints: [web]\n      rule: PathPrefix(`/%s`)\n      service: %s\n", name, name, name)
	}
	b.WriteString("  services:\n")
	var weighted []string
	for name, urls := range services {
		fmt.Fprintf(&b, "    %s:\n      loadBalancer:\n        servers:\n", name)
		for _, u := range urls {
			fmt.Fprintf(&b, "          - url: %s\n", u)
		}
		weighted = append(weighted, name)
	}
	if len(weighted) > 0 {
		b.WriteString("    all:\n      weighted:\n        services:\n")
		for _, name := range weighted {
			fmt.Fprintf(&b, "          - name: %s\n            weight: 1\n", name)
		}
	}
	return b.String()
}

// startTraefik runs a real Traefik (bin/traefik) on loopback with the
// given dynamic configuration until the test ends.
func startTraefik(t *testing.T, ctx context.Context, dynamic string) *traefikproc.Process {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real Traefik (not in -short mode)")
	}
	if err := framework.EnsureBinaries(ctx, os.Stderr); err != nil {
		t.Fatal(err)
	}
	p, err := traefikproc.Start(ctx, traefikproc.Options{Dir: t.TempDir(), Dynamic: dynamic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func addrs(s ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(s))
	for i := range s {
		out[i] = netip.MustParseAddrPort(s[i])
	}
	return out
}

// The Traefik observer lists what a real Traefik's runtime configuration
// sends to, and follows it when the configuration drops a server.
func TestTraefikObserverFollowsARealTraefik(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := startTraefik(t, ctx, dynamicConfig(map[string][]string{
		"shop":  {"http://127.0.0.11:8080", "http://127.0.0.12:8080"},
		"admin": {"http://127.0.0.13:9090", "http://backend.invalid:80", "https://127.0.0.14"},
	}))
	obs, err := gateway.NewTraefik(tr.APIURL())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(obs.String()).To(Equal("Traefik at " + tr.APIURL()))

	// A host name is not a pod IP; a URL without a port has its scheme's.
	g.Eventually(obs.Backends).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).
		Should(ConsistOf(addrs("127.0.0.11:8080", "127.0.0.12:8080", "127.0.0.13:9090", "127.0.0.14:443")))

	g.Expect(tr.WriteDynamic(dynamicConfig(map[string][]string{
		"shop":  {"http://127.0.0.11:8080"},
		"admin": {"http://127.0.0.13:9090"},
	}))).To(Succeed())
	g.Eventually(obs.Backends).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).
		Should(ConsistOf(addrs("127.0.0.11:8080", "127.0.0.13:9090")))
}

// Traefik pages /api/http/services (per_page, page, X-Next-Page): the
// observer reads every page.
func TestTraefikObserverReadsEveryPage(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	services := map[string][]string{}
	var want []netip.AddrPort
	for i := range 5 {
		ip := fmt.Sprintf("127.0.1.%d:8080", i+1)
		services[fmt.Sprintf("svc%d", i)] = []string{"http://" + ip}
		want = append(want, netip.MustParseAddrPort(ip))
	}
	tr := startTraefik(t, ctx, dynamicConfig(services))
	obs, err := gateway.NewTraefik(tr.APIURL())
	g.Expect(err).NotTo(HaveOccurred())
	// Six services (five and the weighted one), two per page: three pages.
	obs.PageSize = 2
	g.Eventually(obs.Backends).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).
		Should(ConsistOf(want))
}

// No answer is no answer: a Traefik that is not there is an error, never
// an empty list (which would release every pod).
func TestTraefikObserverFailsWithoutTraefik(t *testing.T) {
	g := NewWithT(t)
	obs, err := gateway.NewTraefik("http://127.0.0.1:1")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = obs.Backends(context.Background())
	g.Expect(err).To(HaveOccurred())
}

// CAFE sends packets only to loopback: any other API address is refused.
func TestNewTraefikRefusesAnythingButLoopback(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:9000", true},
		{"http://127.3.2.1:9000/prefix/", true},
		{"https://[::1]:9000", true},
		{"http://10.0.0.1:9000", false},
		{"http://traefik.example:9000", false},
		{"http://localhost:9000", false},
		{"ftp://127.0.0.1:9000", false},
		{"127.0.0.1:9000", false},
	} {
		t.Run(tt.url, func(t *testing.T) {
			_, err := gateway.NewTraefik(tt.url)
			if (err == nil) != tt.ok {
				t.Fatalf("NewTraefik(%q) error = %v, want ok = %v", tt.url, err, tt.ok)
			}
		})
	}
}
