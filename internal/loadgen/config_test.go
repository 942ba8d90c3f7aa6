package loadgen

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestConfigIsValidatedAndErrorsNameTheField(t *testing.T) {
	valid := func(mut func(*Config)) Config {
		c := Config{URL: "http://127.0.0.1:8080/", Rate: 10, Duration: time.Second}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	tests := []struct {
		name    string
		config  Config
		wantErr string // "" = valid
	}{
		{"a loopback IPv4 URL is accepted", valid(nil), ""},
		{"any address of 127.0.0.0/8 is accepted", valid(func(c *Config) { c.URL = "http://127.5.6.7:80/x?y=1" }), ""},
		{"localhost is accepted", valid(func(c *Config) { c.URL = "http://LocalHost:9000/" }), ""},
		{"::1 is accepted", valid(func(c *Config) { c.URL = "https://[::1]:8443/" }), ""},
		{"a classic host's address (the project's namespaces) is accepted", valid(func(c *Config) { c.URL = "http://198.19.224.1:8081/call" }), ""},
		{"just outside the project's namespaces is refused", valid(func(c *Config) { c.URL = "http://198.20.0.1/" }), "is not loopback"},
		{"a private address is refused", valid(func(c *Config) { c.URL = "http://10.1.2.3/" }), `URL "http://10.1.2.3/": host "10.1.2.3" is not loopback`},
		{"a public name is refused without resolving it", valid(func(c *Config) { c.URL = "http://example.com/" }), `host "example.com" is not loopback`},
		{"a name that resolves to loopback is refused too", valid(func(c *Config) { c.URL = "http://127.0.0.1.nip.io/" }), "is not loopback"},
		{"a subdomain of localhost is refused", valid(func(c *Config) { c.URL = "http://a.localhost/" }), "is not loopback"},
		{"the unspecified address is refused", valid(func(c *Config) { c.URL = "http://0.0.0.0:80/" }), "is not loopback"},
		{"an IPv4-mapped private address is refused", valid(func(c *Config) { c.URL = "http://[::ffff:10.0.0.1]/" }), "is not loopback"},
		{"another scheme is refused", valid(func(c *Config) { c.URL = "ftp://127.0.0.1/" }), "scheme must be http or https"},
		{"an empty URL is refused", valid(func(c *Config) { c.URL = "" }), "URL is required"},
		{"a URL without host is refused", valid(func(c *Config) { c.URL = "http:///x" }), "no host"},
		{"a Host override is accepted", valid(func(c *Config) { c.Host = "shop.example:8080" }), ""},
		{"a Host with a path is refused", valid(func(c *Config) { c.Host = "shop/x" }), "Host"},
		{"a Host header among Headers is refused", valid(func(c *Config) { c.Headers = http.Header{"host": {"x"}} }), "Headers: set the Host header with the Host field"},
		{"an invalid header name is refused", valid(func(c *Config) { c.Headers = http.Header{"a b": {"x"}} }), "Headers"},
		{"a header value with a newline is refused", valid(func(c *Config) { c.Headers = http.Header{"X-A": {"x\r\nEvil: 1"}} }), "Headers"},
		{"a rate of 0 is refused", valid(func(c *Config) { c.Rate = 0 }), "Rate 0"},
		{"a rate above the bound is refused", valid(func(c *Config) { c.Rate = MaxRate + 1 }), "Rate 5001"},
		{"the maximal rate is accepted", valid(func(c *Config) { c.Rate = MaxRate }), ""},
		{"a negative duration is refused", valid(func(c *Config) { c.Duration = -time.Second }), "Duration"},
		{"a duration above the bound is refused", valid(func(c *Config) { c.Duration = MaxDuration + time.Second }), "Duration"},
		{"a duration of 0 runs until cancelled", valid(func(c *Config) { c.Duration = 0 }), ""},
		{"a negative timeout is refused", valid(func(c *Config) { c.Timeout = -1 }), "Timeout"},
		{"a timeout above the bound is refused", valid(func(c *Config) { c.Timeout = 2 * MaxTimeout }), "Timeout"},
		{"a negative MaxInFlight is refused", valid(func(c *Config) { c.MaxInFlight = -1 }), "MaxInFlight"},
		{"a MaxInFlight above the bound is refused", valid(func(c *Config) { c.MaxInFlight = MaxMaxInFlight + 1 }), "MaxInFlight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, _, err := tt.config.withDefaults()
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
		})
	}
}

func TestDefaults(t *testing.T) {
	g := NewWithT(t)
	c, u, err := Config{URL: "http://localhost/", Rate: 1}.withDefaults()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Hostname()).To(Equal("localhost"))
	g.Expect(c.Timeout).To(Equal(DefaultTimeout))
	g.Expect(c.MaxInFlight).To(Equal(DefaultMaxInFlight))
}

func TestRunRefusesANonLoopbackURLBeforeAnyDial(t *testing.T) {
	for _, raw := range []string{"http://10.1.2.3/", "http://example.com/", "https://8.8.8.8:443/", "http://[2001:db8::1]/"} {
		t.Run(raw, func(t *testing.T) {
			g := NewWithT(t)
			var dials atomic.Int64
			report, err := run(context.Background(), Config{URL: raw, Rate: 10, Duration: time.Second}, func(string) { dials.Add(1) })
			g.Expect(err).To(MatchError(ContainSubstring("is not loopback")))
			g.Expect(report).To(BeNil())
			g.Expect(dials.Load()).To(BeZero())
		})
	}
}

func TestDialAddressResolvesNothingAndKeepsToLoopback(t *testing.T) {
	tests := []struct {
		addr, want string // want "" = refused
	}{
		{"127.0.0.1:80", "127.0.0.1:80"},
		{"127.9.9.9:8080", "127.9.9.9:8080"},
		{"localhost:80", "127.0.0.1:80"},
		{"LOCALHOST:81", "127.0.0.1:81"},
		{"[::1]:443", "[::1]:443"},
		{"198.18.0.7:8080", "198.18.0.7:8080"},
		{"10.1.2.3:80", ""},
		{"example.com:80", ""},
		{"a.localhost:80", ""},
		{"0.0.0.0:80", ""},
		{"[::]:80", ""},
		{"no-port", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			g := NewWithT(t)
			got, err := dialAddress(tt.addr)
			if tt.want == "" {
				g.Expect(err).To(HaveOccurred())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// The dialer's control function is the last guard: even a dialer handed a
// non-loopback address directly refuses it before connect(2).
func TestDialerControlRefusesNonLoopbackBeforeConnect(t *testing.T) {
	g := NewWithT(t)
	d := &net.Dialer{Timeout: time.Second, ControlContext: controlLoopback}
	for _, addr := range []string{"10.1.2.3:9", "192.0.2.1:80", "[2001:db8::1]:80"} {
		_, err := d.DialContext(context.Background(), "tcp", addr)
		g.Expect(errors.Is(err, errNotLoopback)).To(BeTrue(), "dialing %s: %v", addr, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	conn, err := d.DialContext(context.Background(), "tcp", l.Addr().String())
	g.Expect(err).NotTo(HaveOccurred())
	conn.Close()
}

// Run's own transport, asked directly for a non-loopback URL (as a redirect
// or a bug might), refuses to connect.
func TestTransportRefusesNonLoopback(t *testing.T) {
	g := NewWithT(t)
	var dials []string
	client, transport := newClient(Config{Timeout: time.Second, MaxInFlight: 1}, func(addr string) { dials = append(dials, addr) })
	defer transport.CloseIdleConnections()
	for _, raw := range []string{"http://10.1.2.3:9/", "http://example.com/"} {
		_, err := client.Get(raw)
		g.Expect(errors.Is(err, errNotLoopback)).To(BeTrue(), "GET %s: %v", raw, err)
	}
	g.Expect(dials).To(Equal([]string{"10.1.2.3:9", "example.com:80"}))
}
