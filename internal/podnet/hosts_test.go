package podnet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// Each control plane's hosts take addresses from their own range, which
// follows the pod CIDR's slot.
func TestHostPrefixFollowsThePodSlot(t *testing.T) {
	g := NewWithT(t)
	var got []string
	for slot := range slots() {
		p, err := HostPrefix(slot)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(HostPool.Contains(p.Addr())).To(BeTrue())
		got = append(got, p.String())
	}
	g.Expect(got).To(Equal([]string{"198.19.224.0/21", "198.19.232.0/21", "198.19.240.0/21", "198.19.248.0/21"}))
	_, err := HostPrefix(netip.MustParsePrefix("10.244.0.0/16"))
	g.Expect(err).To(MatchError(ContainSubstring("not a /18 slot")))

	pods := For("/state/a", netip.MustParsePrefix("198.18.64.0/18"))
	h1, err := pods.HostNetwork(1)
	g.Expect(err).NotTo(HaveOccurred())
	h2, _ := pods.HostNetwork(2)
	g.Expect(h1.CIDR.String()).To(Equal("198.19.232.1/32"))
	g.Expect(h2.CIDR.String()).To(Equal("198.19.232.2/32"))
	g.Expect(h1.Namespace).To(HavePrefix("cafe-host-"))
	g.Expect(h1.Namespace).NotTo(Equal(h2.Namespace))
	g.Expect(len(h1.HostLink)).To(BeNumerically("<=", 15))
	g.Expect(h1.Host).NotTo(Equal(h2.Host))
	_, err = pods.HostNetwork(2047)
	g.Expect(err).To(MatchError(ContainSubstring("outside the host range")))
}

// A host's address answers what a process started inside its namespace
// serves; setting the link down cuts it off, up restores it; releasing
// the pod network removes its hosts' namespaces.
func TestAHostNetworkServesItsAddressAndCanLoseItsLink(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods := For(t.TempDir(), netip.MustParsePrefix("198.18.192.0/18"))
	host, err := pods.HostNetwork(7)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(host.Create(ctx)).To(Succeed())
	t.Cleanup(func() { host.Delete(context.Background()) })
	addr := host.CIDR.Addr()
	g.Expect(host.CheckRoute(ctx, addr)).To(Succeed())

	// A process started inside the namespace is in it.
	var cmd *exec.Cmd
	g.Expect(InNamespace(host.Namespace, func() error {
		cmd = exec.Command("sleep", "60")
		return cmd.Start()
	})).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	g.Expect(netnsOf(g, fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))).To(Equal(netnsOf(g, "/run/netns/"+host.Namespace)))
	g.Expect(netnsOf(g, "/proc/self/ns/net")).NotTo(Equal(netnsOf(g, "/run/netns/"+host.Namespace)), "the caller's thread is back")

	// What listens inside on the address answers the machine.
	l, err := host.Listen("tcp", addr.String()+":18080")
	g.Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := fmt.Sprintf("http://%s:18080/", addr)
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() error {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	g.Expect(get()).To(Succeed())
	_, err = net.Listen("tcp", addr.String()+":0")
	g.Expect(err).To(HaveOccurred(), "the host's address is not the machine's")

	g.Expect(host.SetLink(ctx, false)).To(Succeed())
	g.Expect(get()).To(HaveOccurred(), "link down: the host is cut off")
	g.Expect(host.CheckRoute(ctx, addr)).To(Succeed(), "and what is sent to it still goes into its pair only")
	g.Expect(host.SetLink(ctx, true)).To(Succeed())
	g.Eventually(get, 10*time.Second).Should(Succeed())

	// Without its network, the address is dropped by the safety net.
	host.Delete(ctx)
	out, err := ip(ctx, "-4", "route", "get", addr.String())
	g.Expect(err).To(HaveOccurred(), "no route: %s", out)
	g.Expect(host.Create(ctx)).To(Succeed())

	pods.deleteHostNetworks(ctx)
	out, err = ip(ctx, "netns", "list")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Contains(out, host.Namespace)).To(BeFalse(), "releasing the pod network removes its hosts")
}

// netnsOf is the namespace identity a /proc or /run/netns path names.
func netnsOf(g Gomega, path string) uint64 {
	var st unix.Stat_t
	g.Expect(unix.Stat(path, &st)).To(Succeed())
	return st.Ino
}
