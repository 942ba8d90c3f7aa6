package podnet

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// HostPool is where the classic hosts of the local control planes take
// their addresses from: 198.19.224.0/19 (RFC 2544, never routed on the
// Internet), a /22 (1,022 hosts) per pod-network slot, so each control
// plane's hosts follow its pod CIDR and never meet another's.
var HostPool = netip.MustParsePrefix("198.19.224.0/19")

// hostSlotBits is the prefix length of one control plane's host range.
const hostSlotBits = 22

// HostPrefix is the host range of the control plane whose pod CIDR is
// podCIDR (a slot of Pool).
func HostPrefix(podCIDR netip.Prefix) (netip.Prefix, error) {
	if !Pool.Contains(podCIDR.Addr()) || podCIDR.Bits() != SlotBits {
		return netip.Prefix{}, fmt.Errorf("pod CIDR %s is not a /%d slot of %s: classic hosts get no network of their own", podCIDR, SlotBits, Pool)
	}
	slot := (toUint(podCIDR.Masked().Addr()) - toUint(Pool.Addr())) >> (32 - SlotBits)
	return netip.PrefixFrom(fromUint(toUint(HostPool.Addr())+slot<<(32-hostSlotBits)), hostSlotBits), nil
}

// HostNetwork is the network of the i-th classic host (from 1) of the
// control plane whose pod network is n: a namespace of its own, joined to
// the machine by a veth pair, in which the host's one address is local and
// to which the machine routes it. Instances started inside it serve on
// that address; setting its link down (SetLink) cuts the host off as a
// failed network would. Release of n deletes it too.
func (n Network) HostNetwork(i int) (Network, error) {
	prefix, err := HostPrefix(n.CIDR)
	if err != nil {
		return Network{}, err
	}
	addr := prefix.Addr()
	for range i {
		addr = addr.Next()
	}
	if i < 1 || !prefix.Contains(addr) || addr == lastOf(prefix) {
		return Network{}, fmt.Errorf("classic host %d: outside the host range %s", i, prefix)
	}
	id := n.id()
	h := For(n.Namespace+"/host/"+strconv.Itoa(i), netip.PrefixFrom(addr, 32))
	h.Namespace = hostNamespacePrefix(id) + strconv.Itoa(i)
	h.HostLink = "ch" + id + strconv.Itoa(i) // at most 15 characters up to host 99999
	return h, nil
}

// SetLink sets the namespace's end of the veth pair up or down: down, the
// host is cut off as by a failed network. The machine's end stays up with
// its route, so what is sent to the host meanwhile still goes into the
// pair (and is lost there), never out by the machine's default route. The
// kernel drops the namespace's route to the project's ranges with the
// link; up, it is restored.
func (n Network) SetLink(ctx context.Context, up bool) error {
	if !up {
		_, err := ip(ctx, "-n", n.Namespace, "link", "set", "eth0", "down")
		return err
	}
	if _, err := ip(ctx, "-n", n.Namespace, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	_, err := ip(ctx, n.projectRoute()...)
	return err
}

// deleteHostNetworks removes the classic hosts' namespaces of the pod
// network n (their veth pairs and routes go with them).
func (n Network) deleteHostNetworks(ctx context.Context) {
	out, err := ip(ctx, "netns", "list")
	if err != nil {
		return
	}
	prefix := hostNamespacePrefix(n.id())
	for _, line := range strings.Split(out, "\n") {
		if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); strings.HasPrefix(name, prefix) {
			_, _ = ip(ctx, "netns", "del", name)
		}
	}
}

// id is the part of the pod network's names derived from its state dir.
func (n Network) id() string { return strings.TrimPrefix(n.Namespace, "cafe-pods-") }

func hostNamespacePrefix(id string) string { return "cafe-host-" + id + "-" }

// InNamespace runs fn on an OS thread that has joined the named network
// namespace (under /run/netns). A process started by fn (os/exec) is
// created in that namespace.
func InNamespace(namespace string, fn func() error) error {
	return Network{Namespace: namespace}.inNamespace(fn)
}

func lastOf(p netip.Prefix) netip.Addr {
	return fromUint(toUint(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1))
}

func toUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
