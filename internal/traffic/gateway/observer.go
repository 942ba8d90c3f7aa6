package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Observer reads from a gateway implementation the backend addresses it
// currently sends requests to (see the package documentation for the
// rules an implementation keeps).
type Observer interface {
	// Backends returns every address the gateway's data plane may send a
	// request to now, read from the data plane itself. Duplicates are
	// fine. It fails rather than return a partial list.
	Backends(ctx context.Context) ([]netip.AddrPort, error)
	// String names the gateway and where it is asked, for logs and
	// events: "Traefik at http://127.0.0.1:9000".
	String() string
}

// DefaultMinReadInterval is the least time between the starts of two
// reads of the gateway (Options.MinReadInterval).
const DefaultMinReadInterval = 50 * time.Millisecond

// readTimeout bounds one read of the gateway; a read that takes longer is
// no answer, and the pods waiting on it ask again.
const readTimeout = 10 * time.Second

// backendSet is one read of the gateway: the ports it sends to, by IP.
type backendSet map[netip.Addr][]uint16

func newBackendSet(addrs []netip.AddrPort) backendSet {
	s := backendSet{}
	for _, a := range addrs {
		ip := a.Addr().Unmap()
		if !slices.Contains(s[ip], a.Port()) {
			s[ip] = append(s[ip], a.Port())
		}
	}
	return s
}

// routesOne returns the first of the addresses the gateway sends to (on
// that IP and that port), if any.
func (s backendSet) routesOne(addrs []netip.AddrPort) (netip.AddrPort, bool) {
	for _, ap := range addrs {
		if slices.Contains(s[ap.Addr().Unmap()], ap.Port()) {
			return ap, true
		}
	}
	return netip.AddrPort{}, false
}

// reads shares reads of the gateway between the pods asking at once.
// Every get returns a read that began after get was called, never an older
// one: a read from before a pod's gate closed could predate the gateway
// picking the pod up. The reads run one at a time, each beginning at least
// minInterval after the previous one ended (so at least that long after it
// began, however the scheduler delays either), and a release of a thousand
// pods asks the gateway a few times a second, not a thousand.
//
//	get A ──┐            get B ──┐
//	        ▼ read 1 begins      ▼ (read 1 began before B: B waits)
//	        ├──────────┤ A answered
//	                   ▼ read 2 begins (≥ minInterval after read 1 ended)
//	                   ├──────────┤ B (and all who came while read 1 ran)
type reads struct {
	observer    Observer
	minInterval time.Duration

	// one serialises the reads.
	one sync.Mutex
	// mu guards next and lastEnd.
	mu sync.Mutex
	// next is the read that callers arriving now will get: it has not
	// begun yet.
	next    *read
	lastEnd time.Time
}

type read struct {
	done     chan struct{}
	backends backendSet
	err      error
}

// get returns a read of the gateway that began after the call.
func (r *reads) get(ctx context.Context) (backendSet, error) {
	r.mu.Lock()
	rd := r.next
	if rd == nil {
		rd = &read{done: make(chan struct{})}
		r.next = rd
		go r.run(rd)
	}
	r.mu.Unlock()
	select {
	case <-rd.done:
		return rd.backends, rd.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run waits for the previous read to end and minInterval to pass since it
// began, closes rd to newcomers, and reads.
func (r *reads) run(rd *read) {
	defer close(rd.done)
	r.one.Lock()
	defer r.one.Unlock()
	r.mu.Lock()
	wait := time.Until(r.lastEnd.Add(r.minInterval))
	r.mu.Unlock()
	if wait > 0 {
		// A rate limit on the gateway's API, not a wait for its state.
		time.Sleep(wait)
	}
	r.mu.Lock()
	r.next = nil
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	addrs, err := r.observer.Backends(ctx)
	r.mu.Lock()
	r.lastEnd = time.Now()
	r.mu.Unlock()
	if err != nil {
		rd.err = fmt.Errorf("reading the backends of %s: %w", r.observer, err)
		return
	}
	rd.backends = newBackendSet(addrs)
}
