package controllerqueue

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

const tick = 5 * time.Millisecond

func newSharedClock() *sharedClock { return &sharedClock{hubs: map[time.Duration]*hub{}} }

// running returns the number of periods that have a running timer.
func (c *sharedClock) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hubs)
}

func TestTickersOfOnePeriodShareOneTimer(t *testing.T) {
	g := NewWithT(t)
	c := newSharedClock()
	a, b := c.NewTicker(tick), c.NewTicker(tick)
	other := c.NewTicker(2 * tick)
	g.Expect(c.running()).To(Equal(2), "one timer per period, not per ticker")

	for _, tk := range []interface{ C() <-chan time.Time }{a, b, other} {
		g.Eventually(tk.C()).Should(Receive(), "every ticker ticks")
	}

	a.Stop()
	g.Expect(c.running()).To(Equal(2), "b still ticks at the first period")
	g.Eventually(b.C()).Should(Receive())
	b.Stop()
	other.Stop()
	other.Stop() // a second Stop is harmless
	g.Expect(c.running()).To(BeZero(), "the timers stop with their last ticker")
}

func TestASlowTickerDoesNotHoldBackTheOthers(t *testing.T) {
	g := NewWithT(t)
	c := newSharedClock()
	slow, fast := c.NewTicker(tick), c.NewTicker(tick)
	defer slow.Stop()
	defer fast.Stop()
	// slow is never read: its one buffered tick fills, later ones are
	// dropped for it, and fast keeps ticking.
	for range 5 {
		g.Eventually(fast.C()).Should(Receive())
	}
	g.Expect(slow.C()).To(HaveLen(1), "a ticker buffers one tick, like time.Ticker")
}

func TestAStoppedTickerGetsNoMoreTicks(t *testing.T) {
	g := NewWithT(t)
	c := newSharedClock()
	kept, stopped := c.NewTicker(tick), c.NewTicker(tick)
	defer kept.Stop()
	stopped.Stop()
	for range 3 {
		g.Eventually(kept.C()).Should(Receive())
	}
	g.Expect(stopped.C()).To(BeEmpty())
}
