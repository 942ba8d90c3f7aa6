package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/registry"
)

// callPath is where the app calls the --call-service (GET only; any other
// method there answers as every other path does).
const callPath = "/call"

// upstreamHeader names, in a callPath answer, the address of the instance
// called.
const upstreamHeader = "X-Cafe-Upstream"

// The caller's own pod and version on a relayed answer (whose X-Cafe-Pod
// and X-Cafe-Version are the upstream's).
const (
	callerPodHeader     = "X-Cafe-Caller-Pod"
	callerVersionHeader = "X-Cafe-Caller-Version"
)

// callTimeout bounds a call to an upstream, from dialing to the end of its
// body.
const callTimeout = 5 * time.Second

// maxUpstreamBody bounds the upstream body relayed: the demo apps answer a
// few hundred bytes, anything much larger is a mistake to report.
const maxUpstreamBody = 1 << 20

// The backoff between attempts to reach the registry at start.
const (
	minConnectBackoff = 100 * time.Millisecond
	maxConnectBackoff = 5 * time.Second
)

// caller serves callPath: it picks an instance of its service through a
// registry Consumer and calls it.
type caller struct {
	log     *slog.Logger
	service registry.Service
	in      appanswer.Instance // who calls: the headers of every answer
	client  *http.Client

	// consumer is nil until the registry has been reached.
	consumer atomic.Pointer[registry.Consumer]
	// lastErr is why the registry has not been reached yet.
	lastErr atomic.Pointer[string]

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startCaller starts reaching the registry for o.callService in the
// background, retrying until stop: the app serves (and /healthz answers)
// whether or not the registry is up, and callPath answers 503 until it is
// reached. listen is the address the app serves on, part of its consumer
// name.
func startCaller(log *slog.Logger, o options, in appanswer.Instance, listen string) *caller {
	ctx, cancel := context.WithCancel(context.Background())
	c := &caller{log: log, service: o.callService, in: in, client: callClient(), cancel: cancel}
	notYet := "not tried yet"
	c.lastErr.Store(&notYet)
	co := registry.ConsumerOptions{
		Endpoints:  o.registry,
		Service:    o.callService,
		Name:       consumerName(o.name, listen),
		Describe:   fmt.Sprintf("%s %s at %s", name, o.name, listen),
		Log:        logr.FromSlogHandler(log.Handler()),
		ApplyDelay: o.applyDelay,
	}
	c.wg.Go(func() { c.connect(ctx, co) })
	return c
}

// connect creates the consumer, retrying until it succeeds or ctx ends.
func (c *caller) connect(ctx context.Context, co registry.ConsumerOptions) {
	backoff := minConnectBackoff
	for {
		cons, err := registry.NewConsumer(ctx, co)
		if err == nil {
			c.consumer.Store(cons)
			c.log.Info("Calling through the registry", "service", co.Service.String(),
				"consumer", co.Name, "instances", len(cons.Instances()), "revision", cons.Acked())
			return
		}
		if ctx.Err() != nil {
			return
		}
		msg := err.Error()
		c.lastErr.Store(&msg)
		c.log.Warn("Registry not reached; retrying", "err", err, "after", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxConnectBackoff)
	}
}

// stop stops the consumer (revoking its lease) and waits for it.
func (c *caller) stop() {
	c.cancel()
	c.wg.Wait()
	if cons := c.consumer.Load(); cons != nil {
		if err := cons.Close(); err != nil {
			c.log.Error("Stopping the registry consumer", "err", err)
		}
	}
	c.client.CloseIdleConnections()
}

// route serves GET callPath itself and everything else through next. (Not
// a ServeMux: it would redirect paths next answers as they are.)
func (c *caller) route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == callPath && r.Method == http.MethodGet {
			c.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP calls GET / on the next instance of the service, once. A
// relayed answer carries the upstream's X-Cafe-Pod and X-Cafe-Version (who
// served the call: what a load generator counts) and the caller's own as
// X-Cafe-Caller-Pod and X-Cafe-Caller-Version; an answer of the caller's
// own (503, 502) carries the caller's as X-Cafe-Pod and X-Cafe-Version.
func (c *caller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set(appanswer.PodHeader, c.in.Pod)
	h.Set(appanswer.VersionHeader, c.in.Version)
	h.Set(callerPodHeader, c.in.Pod)
	h.Set(callerVersionHeader, c.in.Version)
	cons := c.consumer.Load()
	if cons == nil {
		http.Error(w, fmt.Sprintf("the registry has not been reached yet: %s", *c.lastErr.Load()), http.StatusServiceUnavailable)
		return
	}
	inst, ok := cons.Pick()
	if !ok {
		http.Error(w, fmt.Sprintf("no instance of %s registered", c.service), http.StatusServiceUnavailable)
		return
	}
	h.Set(upstreamHeader, inst.Address)
	up, err := c.call(r.Context(), inst.Address)
	if err != nil {
		c.log.Warn("Call failed", "service", c.service.String(), "upstream", inst.Address, "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, name := range []string{"Content-Type", appanswer.PodHeader, appanswer.VersionHeader} {
		if v := up.header.Get(name); v != "" {
			h.Set(name, v)
		} else {
			h.Del(name)
		}
	}
	w.WriteHeader(up.status)
	_, _ = w.Write(up.body)
}

// upstreamAnswer is what a call relays of the upstream's answer.
type upstreamAnswer struct {
	status int
	header http.Header
	body   []byte
}

// call does GET http://<address>/ and reads the whole answer.
func (c *caller) call(ctx context.Context, address string) (upstreamAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/", nil)
	if err != nil {
		return upstreamAnswer{}, fmt.Errorf("calling %s: %w", address, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return upstreamAnswer{}, fmt.Errorf("calling %s: %w", address, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err != nil {
		return upstreamAnswer{}, fmt.Errorf("reading the answer of %s: %w", address, err)
	}
	if len(body) > maxUpstreamBody {
		return upstreamAnswer{}, fmt.Errorf("the answer of %s is larger than %d bytes", address, maxUpstreamBody)
	}
	return upstreamAnswer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// callClient is the HTTP client of the calls: no proxy, no redirect
// followed (the upstream's answer is relayed as it is), and connections
// only to loopback or the project's namespaces.
func callClient() *http.Client {
	dialer := &net.Dialer{Timeout: callTimeout, Control: allowedDestination}
	return &http.Client{
		Timeout: callTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// allowedDestination refuses, before connecting, an address that is
// neither loopback nor in the project's namespaces: the project sends
// nothing anywhere else, whatever the registry says.
func allowedDestination(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to connect to %s: %w", address, err)
	}
	if !podnet.Allowed(ap.Addr()) {
		return errors.New("refusing to connect to " + address + ": neither loopback nor in the project's namespaces (" + podnet.SafetyNet.String() + ")")
	}
	return nil
}

// consumerName is the app's consumer name: stable for an instance (its
// name and the address it serves on), unique among the callers of a
// service, one registry key segment.
func consumerName(instance, listen string) string {
	if instance == "" {
		instance = name
	}
	id := []rune(instance + "_" + listen)
	for i, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_') {
			id[i] = '_'
		}
	}
	s := string(id) // ASCII now
	if len(s) > 253 {
		s = s[len(s)-253:] // the address, which tells instances apart, is at the end
	}
	return s
}
