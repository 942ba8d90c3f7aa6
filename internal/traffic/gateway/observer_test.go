package gateway

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// stepObserver answers each read with the next address and blocks every
// read until the test lets it go.
type stepObserver struct {
	mu      sync.Mutex
	reads   int
	started chan int
	release chan struct{}
}

func (o *stepObserver) Backends(context.Context) ([]netip.AddrPort, error) {
	o.mu.Lock()
	o.reads++
	n := o.reads
	o.mu.Unlock()
	o.started <- n
	<-o.release
	return []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(n))}, nil
}

func (o *stepObserver) String() string { return "step observer" }

// readNumber is the read a get was answered with (its port).
func readNumber(s backendSet) int {
	return int(s[netip.MustParseAddr("10.0.0.1")][0])
}

// A question is never answered with a read that began before it was
// asked, and one read answers every question asked while the previous
// read ran.
func TestReadsNeverAnswerWithAnOlderRead(t *testing.T) {
	g := NewWithT(t)
	obs := &stepObserver{started: make(chan int, 10), release: make(chan struct{})}
	r := &reads{observer: obs, minInterval: time.Millisecond}
	ctx := context.Background()
	answers := make(chan int, 10)
	ask := func() {
		s, err := r.get(ctx)
		if err != nil {
			t.Error(err)
		}
		answers <- readNumber(s)
	}

	go ask()
	g.Expect(<-obs.started).To(Equal(1))
	// Read 1 is running: these three arrive after it began.
	for range 3 {
		go ask()
	}
	g.Consistently(obs.started, 50*time.Millisecond).ShouldNot(Receive(), "a second read began while the first ran")
	obs.release <- struct{}{}
	g.Eventually(answers).Should(Receive(Equal(1)))
	g.Expect(<-obs.started).To(Equal(2))
	obs.release <- struct{}{}
	for range 3 {
		g.Eventually(answers).Should(Receive(Equal(2)))
	}
	g.Consistently(obs.started, 50*time.Millisecond).ShouldNot(Receive(), "no one is waiting: no read")
}

// A caller that gives up does not wait for the read.
func TestReadsHonourTheCallersContext(t *testing.T) {
	g := NewWithT(t)
	obs := &stepObserver{started: make(chan int, 10), release: make(chan struct{})}
	r := &reads{observer: obs, minInterval: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := r.get(ctx)
		done <- err
	}()
	<-obs.started
	cancel()
	g.Eventually(done).Should(Receive(MatchError(context.Canceled)))
	close(obs.release)
}

// timedObserver records when each read began.
type timedObserver struct {
	mu     sync.Mutex
	starts []time.Time
}

func (o *timedObserver) Backends(context.Context) ([]netip.AddrPort, error) {
	o.mu.Lock()
	o.starts = append(o.starts, time.Now())
	o.mu.Unlock()
	return nil, nil
}

func (o *timedObserver) String() string { return "timed observer" }

// Reads begin at least minInterval apart (measured where the observer is
// called), however many callers ask, and callers share them.
func TestReadsAreRateLimited(t *testing.T) {
	g := NewWithT(t)
	obs := &timedObserver{}
	const interval = 40 * time.Millisecond
	r := &reads{observer: obs, minInterval: interval}
	var wg sync.WaitGroup
	for range 3 {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = r.get(context.Background())
			}()
		}
		wg.Wait()
	}
	// Each wave of ten shares at most two reads: the one it started and
	// the one after it, for those that came once it had begun.
	g.Expect(len(obs.starts)).To(BeNumerically("<=", 6))
	for i := 1; i < len(obs.starts); i++ {
		g.Expect(obs.starts[i].Sub(obs.starts[i-1])).To(BeNumerically(">=", interval))
	}
}
