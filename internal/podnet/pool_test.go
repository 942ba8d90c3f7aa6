package podnet

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// Two control planes get two slots of the pool, each routed into its own
// namespace; a released slot is no longer routed.
func TestAllocateGivesEachControlPlaneItsOwnSlot(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx := context.Background()
	a, err := Allocate(ctx, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { Release(context.Background(), a) })
	b, err := Allocate(ctx, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { Release(context.Background(), b) })

	g.Expect(a.CIDR).NotTo(Equal(b.CIDR))
	g.Expect(a.CIDR.Overlaps(b.CIDR)).To(BeFalse())
	for _, n := range []Network{a, b} {
		g.Expect(Pool.Contains(n.CIDR.Addr())).To(BeTrue(), "%s is taken from the pool", n.CIDR)
		g.Expect(n.CIDR.Bits()).To(Equal(SlotBits))
		g.Expect(n.CheckRoute(ctx, n.CIDR.Addr().Next())).To(Succeed())
	}

	Release(ctx, a)
	g.Expect(a.CheckRoute(ctx, a.CIDR.Addr().Next())).NotTo(Succeed(), "a released slot is routed nowhere near the namespace")
	_, err = os.Stat(ownerFile(a.CIDR))
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "its owner record is gone")
}

// A slot whose owner died without releasing it is taken back by the next
// allocation instead of being lost until a reboot.
func TestAllocateReclaimsTheSlotOfADeadOwner(t *testing.T) {
	requireRoot(t)
	g := NewWithT(t)
	ctx := context.Background()
	first, err := Allocate(ctx, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { Release(context.Background(), first) })

	dead := exec.Command("true")
	g.Expect(dead.Run()).To(Succeed())
	data, err := os.ReadFile(ownerFile(first.CIDR))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(data)).To(HavePrefix(itoa(os.Getpid()) + " "))
	g.Expect(os.WriteFile(ownerFile(first.CIDR), []byte(itoa(dead.Process.Pid)+" "+stateDirOf(string(data))+"\n"), 0o644)).To(Succeed())

	// Allocate looks at the slots in order and reclaims each orphan it
	// passes; other control planes on the machine may hold lower slots, so
	// the step is called on this one directly.
	reclaimIfOrphaned(ctx, first.CIDR)
	g.Expect(first.CheckRoute(ctx, first.CIDR.Addr().Next())).NotTo(Succeed(), "the dead owner's namespace no longer takes the traffic")
	g.Expect(first.cidrFree(ctx)).To(Succeed(), "the slot is free for the next allocation")
	_, err = os.Stat(ownerFile(first.CIDR))
	g.Expect(os.IsNotExist(err)).To(BeTrue())

	// A live owner's slot is left alone.
	live, err := Allocate(ctx, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { Release(context.Background(), live) })
	reclaimIfOrphaned(ctx, live.CIDR)
	g.Expect(live.CheckRoute(ctx, live.CIDR.Addr().Next())).To(Succeed())
}

func itoa(i int) string { return strconv.Itoa(i) }

func stateDirOf(owner string) string {
	_, dir, _ := strings.Cut(strings.TrimSpace(owner), " ")
	return dir
}
