// Package podnet gives the simulated pods of the local control plane IP
// addresses that something can really send packets to, without any packet
// leaving the machine.
//
// kwok hands every pod an IP from the pod CIDR, but no process stands
// behind it. The addresses cannot be loopback ones (127.0.0.0/8): the API
// server refuses loopback addresses in EndpointSlices and Endpoints
// (ValidateEndpointIP), so Services, the drain protocol and any gateway
// would see no endpoint at all. Instead, podnet creates a network namespace
// of its own, joined to the host by a veth pair on link-local addresses,
// routes the pod CIDR from the host into it, and makes every address of the
// CIDR local inside it (a "local" route on its loopback). A listener opened
// inside the namespace on a pod's IP (Network.Listen) then answers what the
// host sends to that IP, and the packets never go anywhere but into a
// namespace the project created. Route checks before any traffic
// (Network.CheckRoute) make sure of it. From inside, the project's other
// namespaces (the classic hosts', the pods') are reachable through the
// machine, which forwards only what arrives on the project's links.
//
// It needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root) and iproute2's `ip`.
package podnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// SafetyNet covers every range the project routes into its namespaces
// (Pool, UnroutedCIDR, HostPool: 198.18.0.0/15, reserved for benchmarks by
// RFC 2544). Create installs a blackhole route for it, so a packet for an
// address no namespace holds (a network deleted, a link down) is dropped
// on the machine instead of leaving by its default route.
var SafetyNet = netip.MustParsePrefix("198.18.0.0/15")

// Allowed reports whether the project may send to ip: loopback, or an
// address in SafetyNet (IPv4-mapped forms included). Every check of a
// destination or listen address the project makes goes through it.
func Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || SafetyNet.Contains(ip)
}

// Network is one pod network namespace and its link to the host.
type Network struct {
	// Namespace is the network namespace's name (under /run/netns).
	Namespace string
	// HostLink is the host's end of the veth pair.
	HostLink string
	// CIDR is the pod CIDR routed into the namespace.
	CIDR netip.Prefix
	// Host and Peer are the link-local addresses of the veth pair's ends.
	Host, Peer netip.Addr
}

// For describes the network of a control plane whose state lives in
// stateDir: names derive from it and the link-local addresses from it and
// the CIDR, so two control planes get two networks and a restarted one
// finds its own again. Where another network's pair holds the /30 drawn,
// Create takes the next free one.
func For(stateDir string, cidr netip.Prefix) Network {
	sum := sha256.Sum256([]byte(stateDir))
	id := fmt.Sprintf("%x", sum[:4])
	// A /30 in 169.254.0.0/16 per network: .1 host, .2 namespace.
	link := sha256.Sum256([]byte(stateDir + "|" + cidr.Masked().String()))
	base := netip.AddrFrom4([4]byte{169, 254, link[0], link[1] &^ 3})
	if link[0] == 0 || link[0] == 255 {
		// 169.254.0.0/24 and 169.254.255.0/24 are reserved (RFC 3927).
		base = netip.AddrFrom4([4]byte{169, 254, 77, link[1] &^ 3})
	}
	return Network{
		Namespace: "cafe-pods-" + id,
		HostLink:  "cafe" + id,
		CIDR:      cidr.Masked(),
		Host:      base.Next(),
		Peer:      base.Next().Next(),
	}
}

// Create creates the namespace, the veth pair and the routes, removing
// first whatever a previous run of the same control plane left. It refuses
// a pod CIDR the host already routes elsewhere: packets for it would go to
// someone else's network. n's Host and Peer are the pair's addresses as
// created (takeFreeLink).
func (n *Network) Create(ctx context.Context) error {
	if !n.CIDR.Addr().Is4() || n.CIDR.Addr().IsLoopback() {
		return fmt.Errorf("pod CIDR %s: an IPv4 range outside 127.0.0.0/8 is needed (the API server refuses loopback endpoints)", n.CIDR)
	}
	n.Delete(ctx)
	if err := n.cidrFree(ctx); err != nil {
		return err
	}
	if err := n.takeFreeLink(ctx); err != nil {
		return err
	}
	steps := [][]string{
		// The safety net: whatever of the project's ranges is not routed
		// into one of its namespaces is dropped, not sent by the default
		// route (the more specific routes below win while they exist).
		{"route", "replace", "blackhole", SafetyNet.String()},
		{"netns", "add", n.Namespace},
		{"link", "add", n.HostLink, "type", "veth", "peer", "name", "eth0", "netns", n.Namespace},
		{"addr", "add", n.Host.String() + "/30", "dev", n.HostLink},
		{"link", "set", n.HostLink, "up"},
		{"-n", n.Namespace, "link", "set", "lo", "up"},
		{"-n", n.Namespace, "addr", "add", n.Peer.String() + "/30", "dev", "eth0"},
		{"-n", n.Namespace, "link", "set", "eth0", "up"},
		// Every pod IP is an address of the namespace itself. No default
		// route: from inside, only the machine's end of the pair (answers
		// go to it: the machine sends from that address) and the project's
		// other namespaces are reachable, the latter through the machine,
		// which forwards what arrives on this link and nothing else
		// (forwarding is per link: the machine's own stays off), along its
		// routes into the namespaces or into the blackhole. A namespace of
		// one address (a classic host's) sends from that address, so that
		// whoever it calls can answer it.
		{"-n", n.Namespace, "route", "add", "local", n.CIDR.String(), "dev", "lo", "table", "local"},
		n.projectRoute(),
		{"route", "add", n.CIDR.String(), "via", n.Peer.String(), "dev", n.HostLink},
	}
	for _, args := range steps {
		if _, err := ip(ctx, args...); err != nil {
			n.Delete(ctx)
			return fmt.Errorf("creating pod network %s: %w", n.Namespace, err)
		}
	}
	if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", n.HostLink, "forwarding"), []byte("1"), 0o644); err != nil {
		n.Delete(ctx)
		return fmt.Errorf("creating pod network %s: letting the machine forward what arrives on %s: %w", n.Namespace, n.HostLink, err)
	}
	return nil
}

// projectRoute is the `ip` command that routes the project's ranges from
// inside the namespace to the machine. A namespace of one address (a
// classic host's) sends from it; a pod network's pods only answer.
func (n Network) projectRoute() []string {
	route := []string{"-n", n.Namespace, "route", "replace", SafetyNet.String(), "via", n.Host.String(), "dev", "eth0"}
	if n.CIDR.IsSingleIP() {
		route = append(route, "src", n.CIDR.Addr().String())
	}
	return route
}

// cidrFree fails when the host already has a route for the pod CIDR (or a
// part of it) other than through a default route.
func (n Network) cidrFree(ctx context.Context) error {
	out, err := ip(ctx, "-4", "route", "show", "root", n.CIDR.String())
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("pod CIDR %s is already routed on this host (%s): choose another range", n.CIDR, strings.TrimSpace(out))
	}
	return nil
}

// linkProbes bounds the /30s takeFreeLink tries.
const linkProbes = 64

// takeFreeLink moves the veth pair's addresses to the first /30, from the
// one drawn, that no link of the machine holds: two links with one address
// would misroute answers, and with dozens of networks alive at once (e2e
// shards' control planes, each classic host's) two draws of 16,000 /30s
// meet now and then. Creators that do not share Allocate's lock could
// still take one /30 at the same instant; the window is the few
// milliseconds between this check and the address being set.
func (n *Network) takeFreeLink(ctx context.Context) error {
	host := n.Host
	for range linkProbes {
		out, err := ip(ctx, "-4", "addr", "show", "to", host.String()+"/32")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			n.Host, n.Peer = host, host.Next()
			return nil
		}
		host = nextLinkHost(host)
	}
	return fmt.Errorf("network %s: the link addresses of %d /30s from %s are all taken", n.Namespace, linkProbes, n.Host)
}

// nextLinkHost is the host end (.1 of a /30) of the /30 after host's, in
// 169.254.1.0-169.254.254.255 (the first and last /24 are reserved, RFC
// 3927), wrapping around.
func nextLinkHost(host netip.Addr) netip.Addr {
	b := host.As4()
	v := (uint16(b[2])<<8 | uint16(b[3])&^3) + 4
	if v < 0x0100 || v >= 0xff00 {
		v = 0x0100
	}
	return netip.AddrFrom4([4]byte{169, 254, byte(v >> 8), byte(v) | 1})
}

// Delete removes the route, the veth pair and the namespace; what does not
// exist is skipped.
func (n Network) Delete(ctx context.Context) {
	_, _ = ip(ctx, "route", "del", n.CIDR.String(), "via", n.Peer.String(), "dev", n.HostLink)
	_, _ = ip(ctx, "link", "del", n.HostLink)
	_, _ = ip(ctx, "netns", "del", n.Namespace)
}

// CheckRoute fails unless a packet the host sends to addr goes into the
// namespace: addr must be in the pod CIDR, and the kernel's route for it
// must leave by the namespace's veth pair. Nothing may be sent to addr
// otherwise.
func (n Network) CheckRoute(ctx context.Context, addr netip.Addr) error {
	if !n.CIDR.Contains(addr) {
		return fmt.Errorf("%s is outside the pod CIDR %s: CAFE sends nothing there", addr, n.CIDR)
	}
	out, err := ip(ctx, "-4", "route", "get", addr.String())
	if err != nil {
		// The safety net's blackhole: unreachable, so nothing leaves.
		return fmt.Errorf("%s is routed nowhere, not into the pod network %s: CAFE sends nothing there (%w)", addr, n.Namespace, err)
	}
	fields := strings.Fields(out)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "dev" {
			if fields[i+1] == n.HostLink {
				return nil
			}
			return fmt.Errorf("%s is routed via %s, not into the pod network %s: CAFE sends nothing there", addr, fields[i+1], n.Namespace)
		}
	}
	return fmt.Errorf("cannot tell where %s is routed: %q", addr, strings.TrimSpace(out))
}

// Listen opens a listener inside the namespace (address as for
// net.Listen, e.g. "10.244.0.7:8080"). The socket keeps the namespace it
// was created in, so the process serves it like any other.
func (n Network) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.inNamespace(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// inNamespace runs fn on an OS thread that has joined the namespace, then
// puts the thread back. A thread that cannot be put back is never reused:
// it stays locked and exits with the goroutine.
func (n Network) inNamespace(fn func() error) error {
	runtime.LockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading this thread's network namespace: %w", err)
	}
	defer own.Close()
	target, err := os.Open("/run/netns/" + n.Namespace)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening network namespace %s: %w", n.Namespace, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("joining network namespace %s: %w", n.Namespace, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(fnErr, fmt.Errorf("leaving network namespace %s: %w", n.Namespace, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// ip runs iproute2's ip with args.
func ip(ctx context.Context, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}
