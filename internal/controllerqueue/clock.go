package controllerqueue

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Shared is the process's clock for work queues: real time, with tickers of
// one period fed by one timer.
var Shared clock.WithTicker = &sharedClock{hubs: map[time.Duration]*hub{}}

// sharedClock is the real clock, except that NewTicker subscribes to the
// hub of its period.
type sharedClock struct {
	clock.RealClock

	mu   sync.Mutex
	hubs map[time.Duration]*hub
}

// NewTicker returns a ticker of period d that ticks with every other ticker
// of that period. Like a time.Ticker it buffers one tick and drops ticks
// its reader is too slow for.
func (c *sharedClock) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("controllerqueue: non-positive interval for NewTicker")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hubs[d]
	if h == nil {
		h = &hub{clock: c, period: d, subscribers: map[*subscriber]struct{}{}, stop: make(chan struct{})}
		c.hubs[d] = h
		go h.run(time.NewTicker(d))
	}
	s := &subscriber{hub: h, c: make(chan time.Time, 1)}
	h.subscribers[s] = struct{}{}
	return s
}

// hub is the timer of one period and the tickers it feeds; it stops with
// its last ticker.
type hub struct {
	clock       *sharedClock
	period      time.Duration
	subscribers map[*subscriber]struct{} // guarded by clock.mu
	stop        chan struct{}
}

func (h *hub) run(t *time.Ticker) {
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.clock.mu.Lock()
			for s := range h.subscribers {
				select {
				case s.c <- now:
				default: // its reader has not taken the last tick yet
				}
			}
			h.clock.mu.Unlock()
		}
	}
}

// subscriber is one ticker of a hub.
type subscriber struct {
	hub  *hub
	c    chan time.Time
	once sync.Once
}

func (s *subscriber) C() <-chan time.Time { return s.c }

// Stop ends the ticker; the hub's timer stops with its last ticker.
func (s *subscriber) Stop() {
	s.once.Do(func() {
		c := s.hub.clock
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(s.hub.subscribers, s)
		if len(s.hub.subscribers) == 0 {
			close(s.hub.stop)
			delete(c.hubs, s.hub.period)
		}
	})
}
