package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/cafe-io/cafe/internal/podnet"
)

// Bounds and defaults of [Config].
const (
	MaxRate            = 5000
	MaxDuration        = time.Hour
	DefaultTimeout     = 2 * time.Second
	MaxTimeout         = time.Minute
	DefaultMaxInFlight = 1000
	MaxMaxInFlight     = 20000
)

// Config is one load run. Zero values of the optional fields take the
// defaults above.
type Config struct {
	// URL is requested with GET. Its host must be a loopback IP literal
	// (127.0.0.0/8, ::1) or "localhost"; scheme http or https.
	URL string
	// Host, if set, is sent as the Host header instead of the URL's host
	// (for Host-based HTTPRoutes behind the gateway).
	Host string
	// Headers are added to every request. Set the Host header with Host.
	Headers http.Header
	// Rate is the number of requests per second, 1 to MaxRate.
	Rate int
	// Duration is how long requests are sent; 0 sends until the context
	// passed to Run is cancelled. At most MaxDuration.
	Duration time.Duration
	// Timeout bounds each request, body included (default DefaultTimeout,
	// at most MaxTimeout).
	Timeout time.Duration
	// MaxInFlight is how many requests may be outstanding at once (default
	// DefaultMaxInFlight); a request due while that many are in flight is
	// counted as Dropped instead of being sent.
	MaxInFlight int
	// OnSecond, if set, is called once per second of the run, in order, as
	// soon as every request due in that second has finished. Calls come
	// from one goroutine; a slow callback delays the next ones, not the
	// requests.
	OnSecond func(Second)
}

// withDefaults validates c and returns it with its defaults filled and its
// URL parsed. Errors name the field.
func (c Config) withDefaults() (Config, *url.URL, error) {
	u, err := checkURL(c.URL)
	if err != nil {
		return c, nil, err
	}
	if c.Host != "" && !validHost(c.Host) {
		return c, nil, fmt.Errorf("loadgen: Host %q: not a valid Host header (host or host:port)", c.Host)
	}
	for name, values := range c.Headers {
		if !validToken(name) {
			return c, nil, fmt.Errorf("loadgen: Headers: %q is not a valid header name", name)
		}
		if http.CanonicalHeaderKey(name) == "Host" {
			return c, nil, errors.New("loadgen: Headers: set the Host header with the Host field")
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return c, nil, fmt.Errorf("loadgen: Headers: value of %q contains a control character", name)
			}
		}
	}
	if c.Rate <= 0 || c.Rate > MaxRate {
		return c, nil, fmt.Errorf("loadgen: Rate %d: want 1 to %d requests per second", c.Rate, MaxRate)
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return c, nil, fmt.Errorf("loadgen: Duration %s: want 0 (until cancelled) to %s", c.Duration, MaxDuration)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return c, nil, fmt.Errorf("loadgen: Timeout %s: want more than 0 and at most %s", c.Timeout, MaxTimeout)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > MaxMaxInFlight {
		return c, nil, fmt.Errorf("loadgen: MaxInFlight %d: want 1 to %d", c.MaxInFlight, MaxMaxInFlight)
	}
	return c, u, nil
}

// checkURL parses raw and applies the loopback rule to its host.
func checkURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("loadgen: URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("loadgen: URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("loadgen: URL %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("loadgen: URL %q: no host", raw)
	}
	if !loopbackHost(host) {
		return nil, fmt.Errorf("loadgen: URL %q: host %q is not loopback nor in the project's namespaces: only 127.0.0.0/8, ::1, localhost and %s may be load-tested", raw, host, podnet.SafetyNet)
	}
	return u, nil
}

// loopbackHost reports whether host (no port) is "localhost" or an allowed
// IP literal. No name is resolved.
func loopbackHost(host string) bool {
	return strings.EqualFold(host, "localhost") || allowedIP(host)
}

// allowedIP reports whether host is an IP literal on loopback or in the
// ranges the project routes into network namespaces of its own (the
// simulated pods, the classic hosts): the only places load may go.
func allowedIP(host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return podnet.Allowed(ip)
}

// errNotLoopback is what the dialer returns for any other address.
var errNotLoopback = errors.New("loadgen: refusing to connect to an address neither on loopback nor in the project's namespaces")

// dialAddress maps the transport's "host:port" to the address to dial:
// "localhost" becomes 127.0.0.1, so no resolver (and no DNS packet) is ever
// involved, and anything but a loopback IP literal is refused.
func dialAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	if !allowedIP(host) {
		return "", fmt.Errorf("%w: %s", errNotLoopback, addr)
	}
	return net.JoinHostPort(host, port), nil
}

// controlLoopback is the dialer's last check, on the resolved address,
// after the socket is created and before connect(2): a non-loopback address
// never sees a packet, whatever path led to it.
func controlLoopback(_ context.Context, _, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errNotLoopback, address)
	}
	if !allowedIP(host) {
		return fmt.Errorf("%w: %s", errNotLoopback, address)
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token (a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHost accepts what a Host header may carry: a host name or IP and an
// optional port, no spaces, slashes or user info.
func validHost(s string) bool {
	if len(s) > 255 || strings.ContainsAny(s, " \t\r\n/\\@?#") {
		return false
	}
	u, err := url.Parse("http://" + s)
	return err == nil && u.Host == s && u.Hostname() != ""
}
