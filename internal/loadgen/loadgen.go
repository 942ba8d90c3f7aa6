package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
	"unicode/utf8"
)

// Headers the emulated pods answer with.
const (
	PodHeader     = "X-Cafe-Pod"
	VersionHeader = "X-Cafe-Version"
)

const (
	// maxBody is how much of an answer is read; the rest is discarded with
	// the connection.
	maxBody = 1 << 20
	// errorsPerSecond and maxErrorSamples bound the failure messages kept.
	errorsPerSecond = 3
	maxErrorSamples = 20
	maxMessageLen   = 240
	otherErrors     = "(other)"
)

// Run sends cfg.Rate GET requests per second to cfg.URL until cfg.Duration
// has passed or ctx is cancelled (a run with Duration 0 ends at
// MaxDuration at the latest), waits for the requests in flight (each is
// bounded by cfg.Timeout, and cancelling ctx does not cut them short) and
// returns what happened.
//
// The error is non-nil when cfg is invalid (nothing was sent; the report is
// nil) or when ctx ended a run before its Duration (the report covers what
// was sent). Cancelling a run of Duration 0 is its normal end.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	return run(ctx, cfg, nil)
}

// run is Run with an observer of every dial attempt (before any check), for
// the tests.
func run(ctx context.Context, cfg Config, onDial func(addr string)) (*Report, error) {
	cfg, u, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, transport := newClient(cfg, onDial)
	defer transport.CloseIdleConnections()
	template, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("loadgen: URL: %w", err)
	}
	for name, values := range cfg.Headers {
		for _, v := range values {
			template.Header.Add(name, v)
		}
	}
	if cfg.Host != "" {
		template.Host = cfg.Host
	}

	r := &runner{cfg: cfg, client: client, template: template, errIndex: map[string]int{}}
	if cfg.OnSecond != nil {
		r.wake = make(chan struct{}, 1)
	}
	return r.run(ctx)
}

func newClient(cfg Config, onDial func(string)) (*http.Client, *http.Transport) {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, ControlContext: controlLoopback}
	transport := &http.Transport{
		// No proxy: the environment must not route the load elsewhere.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if onDial != nil {
				onDial(addr)
			}
			target, err := dialAddress(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, target)
		},
		// Keep a connection per request in flight: at hundreds of requests
		// per second, closing them would exhaust the ephemeral ports.
		MaxIdleConns:        cfg.MaxInFlight,
		MaxIdleConnsPerHost: cfg.MaxInFlight,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.Timeout,
		DisableCompression:  true,
	}
	client := &http.Client{
		Transport: transport,
		// A redirect is an answer, and following one could leave loopback.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client, transport
}

type runner struct {
	cfg      Config
	client   *http.Client
	template *http.Request
	start    time.Time
	wg       sync.WaitGroup
	wake     chan struct{} // nil without OnSecond

	mu      sync.Mutex
	seconds []*secondState
	// scheduled is the offset of the next request due: every second that
	// ends at or before it has all its requests sent or dropped.
	scheduled time.Duration
	done      bool // no request is due any more
	emitted   int  // seconds handed to OnSecond
	errors    []ErrorSample
	errIndex  map[string]int
	maxLag    time.Duration
}

type secondState struct {
	counts      Counts
	versions    map[string]int64
	pods        map[string]int64
	hist        histogram
	errors      []string
	outstanding int
}

// offset is when request i is due, exact for any i (no overflow).
func offset(i int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(i/r)*time.Second + time.Duration((i%r)*int64(time.Second)/r)
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	duration := r.cfg.Duration
	if duration == 0 {
		duration = MaxDuration
	}
	// Requests due before the end: ceil(duration × rate).
	total := (int64(duration)*int64(r.cfg.Rate) + int64(time.Second) - 1) / int64(time.Second)
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	emitterDone := make(chan struct{})
	if r.wake != nil {
		go r.emit(emitterDone)
	} else {
		close(emitterDone)
	}

	r.start = time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	cut := false
pace:
	for i := int64(0); i < total; i++ {
		due := offset(i, r.cfg.Rate)
		at := r.start.Add(due)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				cut = true
				break pace
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			cut = true
			break pace
		}
		second := int(due / time.Second)
		lag := time.Since(at)
		select {
		case sem <- struct{}{}:
			r.dispatched(second, offset(i+1, r.cfg.Rate), lag, false)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() { <-sem }()
				r.do(ctx, second)
			}()
		default:
			r.dispatched(second, offset(i+1, r.cfg.Rate), lag, true)
		}
	}
	r.wg.Wait()
	end := time.Now()
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
	if r.wake != nil {
		close(r.wake)
	}
	<-emitterDone

	report := r.report(end)
	if cut && r.cfg.Duration > 0 {
		return report, fmt.Errorf("loadgen: stopped after %s of %s: %w", end.Sub(r.start).Round(time.Millisecond), r.cfg.Duration, context.Cause(ctx))
	}
	return report, nil
}

// dispatched records a request due in second as sent or dropped; next is
// when the following one is due.
func (r *runner) dispatched(second int, next, lag time.Duration, dropped bool) {
	r.mu.Lock()
	for len(r.seconds) <= second {
		r.seconds = append(r.seconds, &secondState{versions: map[string]int64{}, pods: map[string]int64{}})
	}
	s := r.seconds[second]
	if dropped {
		s.counts.Dropped++
		r.recordError(second, s, fmt.Sprintf("dropped: %d requests already in flight", r.cfg.MaxInFlight))
	} else {
		s.counts.Sent++
		s.outstanding++
	}
	crossed := int(next/time.Second) > second
	r.scheduled = next
	r.maxLag = max(r.maxLag, lag)
	r.mu.Unlock()
	if crossed {
		r.notify()
	}
}

// outcome is what one request came to.
type outcome struct {
	kind         int
	latency      time.Duration // with an HTTP answer
	version, pod string
	message      string
	hasLatency   bool
}

const (
	kindOK = iota
	kindNon2xx
	kindConn
	kindTimeout
)

// do sends one request. Its context is not ctx's child: stopping the run
// must not turn the requests in flight into failures.
func (r *runner) do(ctx context.Context, second int) {
	reqCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()
	req := r.template.Clone(reqCtx)
	begin := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		r.finished(second, failure(err, r.cfg.Timeout))
		return
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if err != nil {
		o := failure(err, r.cfg.Timeout)
		o.message = fmt.Sprintf("HTTP %d, then reading the body: %s", resp.StatusCode, o.message)
		r.finished(second, o)
		return
	}
	o := outcome{latency: time.Since(begin), hasLatency: true, version: resp.Header.Get(VersionHeader), pod: resp.Header.Get(PodHeader)}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		o.kind = kindOK
	} else {
		o.kind = kindNon2xx
		o.message = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if loc := resp.Header.Get("Location"); loc != "" {
			o.message += fmt.Sprintf(" to %q (redirects are not followed)", loc)
		}
		if o.pod != "" || o.version != "" {
			o.message += fmt.Sprintf(" from pod %q version %q", o.pod, o.version)
		}
	}
	r.finished(second, o)
}

// failure classifies a request that got no (whole) answer.
func failure(err error, timeout time.Duration) outcome {
	msg := err.Error()
	if ue, ok := errors.AsType[*url.Error](err); ok {
		msg = ue.Err.Error() // without the repeated method and URL
	}
	ne, isNet := errors.AsType[net.Error](err)
	if errors.Is(err, context.DeadlineExceeded) || (isNet && ne.Timeout()) {
		return outcome{kind: kindTimeout, message: fmt.Sprintf("timeout (%s): %s", timeout, msg)}
	}
	return outcome{kind: kindConn, message: msg}
}

func (r *runner) finished(second int, o outcome) {
	r.mu.Lock()
	s := r.seconds[second]
	switch o.kind {
	case kindOK:
		s.counts.OK++
		s.versions[o.version]++
		s.pods[o.pod]++
	case kindNon2xx:
		s.counts.Non2xx++
	case kindConn:
		s.counts.ConnErrors++
	case kindTimeout:
		s.counts.Timeouts++
	}
	if o.hasLatency {
		s.hist.add(o.latency)
	}
	if o.kind != kindOK {
		r.recordError(second, s, o.message)
	}
	s.outstanding--
	complete := s.outstanding == 0 && r.scheduled >= time.Duration(second+1)*time.Second
	r.mu.Unlock()
	if complete {
		r.notify()
	}
}

// recordError keeps the first few messages of each second and the first
// distinct messages of the run. r.mu is held.
func (r *runner) recordError(second int, s *secondState, msg string) {
	if len(msg) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	if len(s.errors) < errorsPerSecond {
		s.errors = append(s.errors, msg)
	}
	i, seen := r.errIndex[msg]
	if !seen {
		if len(r.errors) >= maxErrorSamples-1 {
			msg = otherErrors
			i, seen = r.errIndex[msg]
		}
		if !seen {
			i = len(r.errors)
			r.errIndex[msg] = i
			r.errors = append(r.errors, ErrorSample{Message: msg, FirstSecond: second})
		}
	}
	r.errors[i].Count++
}

func (r *runner) notify() {
	if r.wake == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return // wake is closed
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// emit calls OnSecond for each second in order once it is complete: all
// its requests sent (or dropped) and finished.
func (r *runner) emit(done chan<- struct{}) {
	defer close(done)
	for {
		_, open := <-r.wake
		for {
			r.mu.Lock()
			var next *Second
			if i := r.emitted; i < len(r.seconds) && r.seconds[i].outstanding == 0 &&
				(r.done || r.scheduled >= time.Duration(i+1)*time.Second) {
				s := r.seconds[i].snapshot(i)
				next = &s
				r.emitted++
			}
			r.mu.Unlock()
			if next == nil {
				break
			}
			r.cfg.OnSecond(*next)
		}
		if !open {
			return
		}
	}
}

// snapshot copies the state of second i. The caller holds r.mu.
func (s *secondState) snapshot(i int) Second {
	versions := make(map[string]int64, len(s.versions))
	for k, v := range s.versions {
		versions[k] = v
	}
	pods := make(map[string]int64, len(s.pods))
	for k, v := range s.pods {
		pods[k] = v
	}
	return Second{
		Index:    i,
		Counts:   s.counts,
		Versions: versions,
		Pods:     pods,
		Latency:  s.hist.latency(),
		Errors:   append([]string(nil), s.errors...),
	}
}

func (r *runner) report(end time.Time) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{
		URL:      r.cfg.URL,
		Rate:     r.cfg.Rate,
		Start:    r.start,
		Duration: end.Sub(r.start),
		Seconds:  make([]Second, len(r.seconds)),
		hists:    make([]histogram, len(r.seconds)),
		Errors:   append([]ErrorSample(nil), r.errors...),
		MaxLag:   r.maxLag,
	}
	for i, s := range r.seconds {
		rep.Seconds[i] = s.snapshot(i)
		rep.hists[i] = s.hist
	}
	rep.Total = rep.summary(0, len(rep.Seconds))
	return rep
}
