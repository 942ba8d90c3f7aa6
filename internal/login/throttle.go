package login

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Throttle slows password guessing: after MaxPerUser failed logins for one
// user name, or MaxPerAddress from one client address, within Window, the
// service refuses further logins for that name or from that address (429,
// with Retry-After) until the oldest failure leaves the window. A login
// that succeeds clears its user's failures. It throttles, it never locks an
// account for good: disabling one is the directory's decision, and a
// permanent lock would let anyone shut a colleague out.
type Throttle struct {
	MaxPerUser    int
	MaxPerAddress int
	Window        time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
	now      func() time.Time
}

// Throttle defaults: five wrong passwords per user a minute (a person who
// mistypes gets a few tries), twenty per address (one machine trying many
// users).
const (
	DefaultMaxFailuresPerUser    = 5
	DefaultMaxFailuresPerAddress = 20
	DefaultThrottleWindow        = time.Minute
)

// maxThrottleKeys bounds the memory a flood of distinct names can take:
// beyond it, expired entries are swept before a new key is added.
const maxThrottleKeys = 10000

// NewThrottle is a Throttle with the defaults.
func NewThrottle() *Throttle {
	return &Throttle{MaxPerUser: DefaultMaxFailuresPerUser, MaxPerAddress: DefaultMaxFailuresPerAddress, Window: DefaultThrottleWindow}
}

func userKey(user string) string    { return "user\x00" + user }
func addressKey(addr string) string { return "addr\x00" + addr }

// clientAddress is the request's peer IP (no port: a client opens a new
// connection per login).
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (t *Throttle) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// RetryAfter is how long a login for user from addr must wait; zero when
// it may be tried now.
func (t *Throttle) RetryAfter(user, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	return max(t.blockedFor(userKey(user), t.MaxPerUser, now), t.blockedFor(addressKey(addr), t.MaxPerAddress, now))
}

// Failed records a failed login.
func (t *Throttle) Failed(user, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	if t.failures == nil {
		t.failures = map[string][]time.Time{}
	}
	if len(t.failures) >= maxThrottleKeys {
		t.sweep(now)
	}
	for _, k := range []string{userKey(user), addressKey(addr)} {
		t.failures[k] = append(t.recent(k, now), now)
	}
}

// Succeeded clears user's failures (not the address's: one right password
// must not reset a machine's guesses at other users).
func (t *Throttle) Succeeded(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, userKey(user))
}

// recent is key's failures still in the window.
func (t *Throttle) recent(key string, now time.Time) []time.Time {
	all := t.failures[key]
	i := 0
	for i < len(all) && now.Sub(all[i]) >= t.Window {
		i++
	}
	return all[i:]
}

func (t *Throttle) blockedFor(key string, limit int, now time.Time) time.Duration {
	recent := t.recent(key, now)
	if limit <= 0 || len(recent) < limit {
		return 0
	}
	// Blocked until enough failures leave the window to fall under limit.
	return recent[len(recent)-limit].Add(t.Window).Sub(now)
}

func (t *Throttle) sweep(now time.Time) {
	for k := range t.failures {
		if len(t.recent(k, now)) == 0 {
			delete(t.failures, k)
		}
	}
}
