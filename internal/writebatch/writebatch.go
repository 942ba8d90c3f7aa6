// Package writebatch runs a reconcile's independent API writes
// concurrently, bounded, so a group of a hundred pods is not paced by one
// round trip after another.
package writebatch

import (
	"errors"
	"sync"
)

// Concurrency is the usual bound of writes in flight for one reconcile.
const Concurrency = 64

// Batch is a set of independent API writes.
type Batch []func() error

// Add queues a write.
func (b *Batch) Add(write func() error) { *b = append(*b, write) }

// Run executes the writes with at most n in flight and joins their errors.
func (b Batch) Run(n int) error {
	errs := make([]error, len(b))
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for i, write := range b {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = write()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
