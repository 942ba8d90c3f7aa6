package podnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// The pod network needs root (network namespaces, veth pairs, routes), as
// the local control plane does; CI runs as root (.ci/run installs packages).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("podnet needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run the tests as root, as .ci/run does")
	}
}

func create(t *testing.T, g Gomega, cidr string) Network {
	t.Helper()
	n := For(t.TempDir(), netip.MustParsePrefix(cidr))
	ctx := context.Background()
	g.Expect(n.Create(ctx)).To(Succeed())
	t.Cleanup(func() { n.Delete(context.Background()) })
	return n
}

// What the host sends to a pod IP reaches a listener inside the namespace,
// from the host's end of the veth pair; the route check accepts pod IPs
// only while they are routed into the namespace.
func TestPodIPsAnswerFromInsideTheNamespaceOnly(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := create(t, g, "198.19.128.0/20")
	pod := netip.MustParseAddr("198.19.131.4")
	g.Expect(n.CheckRoute(ctx, pod)).To(Succeed())
	g.Expect(n.CheckRoute(ctx, netip.MustParseAddr("198.19.160.1"))).To(MatchError(ContainSubstring("outside the pod CIDR")))

	_, err := net.Listen("tcp", pod.String()+":0")
	g.Expect(err).To(HaveOccurred(), "a pod IP is not an address of the host")
	l, err := n.Listen("tcp", pod.String()+":8080")
	g.Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "from %s", r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pod.String()+":8080/", nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(string(body)).To(HavePrefix("from "+n.Host.String()+":"), "the host reaches the pod through the veth pair")

	n.Delete(ctx)
	g.Expect(n.CheckRoute(ctx, pod)).To(MatchError(ContainSubstring("not into the pod network")), "once the route is gone nothing may be sent")
}

// A pod CIDR the host already routes, or a loopback one, is refused: its
// packets would go to someone else's network, or no endpoint could be
// published.
func TestCreateRefusesATakenOrLoopbackCIDR(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx := context.Background()
	first := create(t, g, "198.19.144.0/20")
	second := For(t.TempDir(), first.CIDR)
	g.Expect(second.Create(ctx)).To(MatchError(ContainSubstring("already routed")))
	t.Cleanup(func() { second.Delete(context.Background()) })
	g.Expect(first.CheckRoute(ctx, netip.MustParseAddr("198.19.144.9"))).To(Succeed(), "the refused one changed nothing")

	loop := For(t.TempDir(), netip.MustParsePrefix("127.1.0.0/16"))
	g.Expect(loop.Create(ctx)).To(MatchError(ContainSubstring("outside 127.0.0.0/8")))
}

// Two networks that drew one /30 both come up, the second on the next free
// one (the draw is simulated: the second is given the first's addresses).
func TestCreateTakesTheNextFreeLinkWhenTheDrawnOneIsTaken(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx := context.Background()
	first := create(t, g, "198.19.160.0/20")
	second := For(t.TempDir(), netip.MustParsePrefix("198.19.176.0/20"))
	second.Host, second.Peer = first.Host, first.Peer
	g.Expect(second.Create(ctx)).To(Succeed())
	t.Cleanup(func() { second.Delete(context.Background()) })
	g.Expect(second.Host).NotTo(Equal(first.Host))
	g.Expect(second.Peer).To(Equal(second.Host.Next()))
	g.Expect(first.CheckRoute(ctx, netip.MustParseAddr("198.19.160.9"))).To(Succeed())
	g.Expect(second.CheckRoute(ctx, netip.MustParseAddr("198.19.176.9"))).To(Succeed())
}

// The /30s tried after a taken one stay in 169.254.1.0-169.254.254.255
// (RFC 3927 reserves the first and last /24) and start at their .1.
func TestNextLinkHostSkipsTheReservedRanges(t *testing.T) {
	g := NewWithT(t)
	g.Expect(nextLinkHost(netip.MustParseAddr("169.254.10.5"))).To(Equal(netip.MustParseAddr("169.254.10.9")))
	g.Expect(nextLinkHost(netip.MustParseAddr("169.254.10.253"))).To(Equal(netip.MustParseAddr("169.254.11.1")))
	g.Expect(nextLinkHost(netip.MustParseAddr("169.254.254.253"))).To(Equal(netip.MustParseAddr("169.254.1.1")), "wraps around before 169.254.255.0/24")
}

// Names and addresses derive from the state directory: stable for one
// control plane, different for two, valid as Linux names (at most 15
// characters for a link).
func TestForDerivesStableDistinctNames(t *testing.T) {
	g := NewWithT(t)
	cidr := netip.MustParsePrefix("10.244.0.0/16")
	a, b := For("/state/a", cidr), For("/state/b", cidr)
	g.Expect(For("/state/a", cidr)).To(Equal(a))
	g.Expect(a.Namespace).NotTo(Equal(b.Namespace))
	g.Expect(len(a.HostLink)).To(BeNumerically("<=", 15))
	g.Expect(netip.MustParsePrefix("169.254.0.0/16").Contains(a.Host)).To(BeTrue())
	g.Expect(a.Peer).To(Equal(a.Host.Next()))
}
