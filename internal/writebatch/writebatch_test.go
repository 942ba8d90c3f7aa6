package writebatch

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The first writes wait until the bound is reached, so the test proves
// that n writes do run at once, and that no more than n ever do.
func TestRunBoundsTheWritesInFlightAndJoinsEveryError(t *testing.T) {
	const bound = 4
	var inFlight, peak atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	errA, errB, errStarved := errors.New("a"), errors.New("b"), errors.New("the bound was never reached")
	var b Batch
	for i := range 20 {
		b.Add(func() error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			if n == bound {
				once.Do(func() { close(full) })
			}
			select {
			case <-full:
			case <-time.After(10 * time.Second):
				return errStarved
			}
			switch i {
			case 3:
				return errA
			case 11:
				return errB
			}
			return nil
		})
	}
	err := b.Run(bound)
	if errors.Is(err, errStarved) {
		t.Fatalf("fewer than %d writes ran at once", bound)
	}
	if !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Fatalf("Run joined %v, want both errors", err)
	}
	if p := peak.Load(); p != bound {
		t.Fatalf("peak writes in flight %d, want the bound %d", p, bound)
	}
}

func TestRunOfAnEmptyBatchSucceeds(t *testing.T) {
	if err := (Batch{}).Run(Concurrency); err != nil {
		t.Fatal(err)
	}
}
