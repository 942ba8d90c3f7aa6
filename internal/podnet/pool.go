package podnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cafe-io/cafe/internal/flock"
)

// Pool is where the local control planes of one machine take their pod
// CIDRs from: 198.18.0.0/16, in /19 slots (8,190 pod IPs each, eight control
// planes with a pod network at once: `make test` runs two e2e shards, each
// of which may start a second control plane, beside the pod network's own
// tests; four slots were not enough). 198.18.0.0/15 is reserved for network
// benchmarking (RFC 2544) and never routed on the Internet, and the route
// into the namespace makes sure nothing sent to it leaves the machine.
var Pool = netip.MustParsePrefix("198.18.0.0/16")

// SlotBits is the prefix length of one control plane's pod CIDR.
const SlotBits = 19

// UnroutedCIDR is the pod CIDR of a control plane that runs without a pod
// network: nothing is routed there and nothing of the project sends to it.
var UnroutedCIDR = netip.MustParsePrefix("198.19.0.0/18")

// ownersDir records which state directory (and process) owns each slot, so
// a slot left by a process that died without cleaning up can be reclaimed.
const ownersDir = "/run/cafe-podnet"

// Allocate creates the pod network of the control plane whose state is in
// stateDir on the first free slot of Pool. A slot is free when the host
// routes nothing there, or when its recorded owner process is gone (its
// network is then removed first). Allocations on one machine are
// serialised by a lock file.
func Allocate(ctx context.Context, stateDir string) (Network, error) {
	if err := os.MkdirAll(ownersDir, 0o755); err != nil {
		return Network{}, fmt.Errorf("pod network: %w", err)
	}
	unlock, err := flock.Lock(filepath.Join(ownersDir, ".lock"))
	if err != nil {
		return Network{}, err
	}
	defer unlock()

	var errs []error
	for slot := range slots() {
		reclaimIfOrphaned(ctx, slot)
		n := For(stateDir, slot)
		if err := n.Create(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := writeOwner(slot, stateDir); err != nil {
			n.Delete(ctx)
			return Network{}, err
		}
		return n, nil
	}
	return Network{}, fmt.Errorf("no free pod CIDR in %s (each running local control plane with a pod network takes a /%d): %w", Pool, SlotBits, errors.Join(errs...))
}

// Release deletes the network, with its classic hosts' networks, and
// forgets its owner record.
func Release(ctx context.Context, n Network) {
	n.deleteHostNetworks(ctx)
	n.Delete(ctx)
	_ = os.Remove(ownerFile(n.CIDR))
}

func slots() func(yield func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		size := uint32(1) << (32 - SlotBits)
		base := Pool.Addr().As4()
		start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		for i := uint32(0); i < 1<<(SlotBits-Pool.Bits()); i++ {
			a := start + i*size
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), SlotBits)
			if !yield(p) {
				return
			}
		}
	}
}

func ownerFile(slot netip.Prefix) string {
	return filepath.Join(ownersDir, strings.ReplaceAll(slot.String(), "/", "_"))
}

// writeOwner records "<pid> <state dir>" for the slot.
func writeOwner(slot netip.Prefix, stateDir string) error {
	data := strconv.Itoa(os.Getpid()) + " " + stateDir + "\n"
	if err := os.WriteFile(ownerFile(slot), []byte(data), 0o644); err != nil {
		return fmt.Errorf("recording the owner of pod CIDR %s: %w", slot, err)
	}
	return nil
}

// reclaimIfOrphaned removes the network of a slot whose owner process no
// longer runs (a control plane killed before it could clean up).
func reclaimIfOrphaned(ctx context.Context, slot netip.Prefix) {
	data, err := os.ReadFile(ownerFile(slot))
	if err != nil {
		return
	}
	pidText, stateDir, ok := strings.Cut(strings.TrimSpace(string(data)), " ")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 {
		return
	}
	if syscall.Kill(pid, 0) == nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return // alive (or not ours to judge)
	}
	Release(ctx, For(stateDir, slot))
}
