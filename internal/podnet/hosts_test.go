package podnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
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
	g.Expect(got).To(Equal([]string{"198.19.224.0/22", "198.19.228.0/22", "198.19.232.0/22", "198.19.236.0/22", "198.19.240.0/22", "198.19.244.0/22", "198.19.248.0/22", "198.19.252.0/22"}))
	_, err := HostPrefix(netip.MustParsePrefix("10.244.0.0/16"))
	g.Expect(err).To(MatchError(ContainSubstring("not a /19 slot")))

	pods := For("/state/a", netip.MustParsePrefix("198.18.64.0/19"))
	h1, err := pods.HostNetwork(1)
	g.Expect(err).NotTo(HaveOccurred())
	h2, _ := pods.HostNetwork(2)
	g.Expect(h1.CIDR.String()).To(Equal("198.19.232.1/32"))
	g.Expect(h2.CIDR.String()).To(Equal("198.19.232.2/32"))
	g.Expect(h1.Namespace).To(HavePrefix("cafe-host-"))
	g.Expect(h1.Namespace).NotTo(Equal(h2.Namespace))
	g.Expect(len(h1.HostLink)).To(BeNumerically("<=", 15))
	g.Expect(h1.Host).NotTo(Equal(h2.Host))
	_, err = pods.HostNetwork(1023)
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
	pods := For(t.TempDir(), netip.MustParsePrefix("198.18.192.0/19"))
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

// A classic host calls pods and another host through the machine, which
// forwards what arrives on the project's links only, also after its link
// was lost and came back: the callee sees the host's address; nothing
// outside the project's ranges is routed from inside; the machine's own
// forwarding is left as it was.
func TestHostsReachThePodsAndEachOtherThroughTheMachine(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	globalBefore := readSysctl(g, "/proc/sys/net/ipv4/ip_forward")
	pods := create(t, g, "198.19.128.0/20")
	var hosts []Network
	for i := range 2 {
		h := For(t.TempDir(), netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("198.19.232.%d", 201+i)), 32))
		h.Namespace = fmt.Sprintf("cafe-host-test-%d", i)
		h.HostLink = fmt.Sprintf("chtest%d", i)
		g.Expect(h.Create(ctx)).To(Succeed())
		t.Cleanup(func() { h.Delete(context.Background()) })
		hosts = append(hosts, h)
	}
	caller := hosts[0]

	// Servers in the pod network and in the second host say who called.
	whoCalled := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RemoteAddr) })
	targets := []string{"198.19.131.9:18090", hosts[1].CIDR.Addr().String() + ":18091"}
	for i, n := range []Network{pods, hosts[1]} {
		l, err := n.Listen("tcp", targets[i])
		g.Expect(err).NotTo(HaveOccurred())
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: whoCalled}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	// A link lost and back (the kernel drops the routes through it)
	// reaches them again.
	g.Expect(caller.SetLink(ctx, false)).To(Succeed())
	g.Expect(caller.SetLink(ctx, true)).To(Succeed())
	for _, target := range targets {
		var answer string
		g.Expect(InNamespace(caller.Namespace, func() error {
			conn, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			if _, err := fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
				return err
			}
			b, err := io.ReadAll(conn)
			answer = string(b)
			return err
		})).To(Succeed(), "the host reaches %s", target)
		g.Expect(answer).To(ContainSubstring("\r\n\r\n"+caller.CIDR.Addr().String()+":"), "%s sees the host's own address", target)
	}

	// From inside, nothing but the link and the project's ranges has a
	// route: no packet for elsewhere can be sent.
	out, err := ip(ctx, "-n", caller.Namespace, "-4", "route", "get", "192.0.2.1")
	g.Expect(err).To(HaveOccurred(), "no route out of the project's ranges: %s", out)
	g.Expect(readSysctl(g, "/proc/sys/net/ipv4/ip_forward")).To(Equal(globalBefore), "the machine's own forwarding is untouched")
	g.Expect(readSysctl(g, "/proc/sys/net/ipv4/conf/"+caller.HostLink+"/forwarding")).To(Equal("1"))
}

func readSysctl(g Gomega, path string) string {
	b, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(b))
}
