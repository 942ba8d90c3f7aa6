package nodelifecycle

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Prober probes every node's kubelet endpoint
// (https://<InternalIP>:<status.daemonEndpoints.kubeletEndpoint.Port>/healthz)
// and keeps each node's current run of failures. Any HTTP answer counts as
// the kubelet answering, even 401/403 (a real kubelet wants credentials) or
// a plain-HTTP reply to the TLS hello (kwok's server): the probe asks
// "does something answer at the node's kubelet address", which a node
// whose heartbeat still arrives through a partitioned path may not.
type Prober struct {
	Reader client.Reader
	// Policy returns the policy in force (the reconciler's latest read).
	Policy func() cafev1alpha1.NodeLifecyclePolicySpec
	// Probe performs one probe; nil means an HTTP GET as described above.
	Probe func(ctx context.Context, endpoint string, timeout time.Duration) error
	Now   func() time.Time
	// Changed, when set, is called when a node's probe signal turns bad or
	// good (its failures reach the policy's threshold or end), so that the
	// verdict is reconsidered at once rather than at the next resync.
	Changed func()

	mu      sync.Mutex
	results map[string]*ProbeResult // by node name
	last    map[string]time.Time    // by kubelet endpoint: when it was last probed
	wake    chan struct{}           // Wake's signal to Start (made on first use)
}

// idleProbeWait is the longest the prober sleeps between rounds: a safety
// net, the reconciler's passes (Wake) and the due probes being the clock.
const idleProbeWait = time.Minute

// minProbeWait keeps rounds apart when endpoints fall due a moment apart.
const minProbeWait = 100 * time.Millisecond

var _ manager.Runnable = &Prober{}

// Result returns a copy of the node's probe record (nil if never probed).
func (p *Prober) Result(node string) *ProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[node]
	if !ok {
		return nil
	}
	c := *r
	return &c
}

// Start implements manager.Runnable: a loop that probes each node's kubelet
// endpoint once per probe.periodSeconds, at most 16 at a time.
//
// It sleeps until the next probe falls due (one round per period when, as
// with kwok, every node shares one kubelet endpoint) rather than ticking:
// listing every node each second was half of CAFE's CPU on a quiet
// cluster. What a due time cannot foresee, a node added or re-addressed or
// a policy changed, reaches it through Wake, which every node lifecycle
// pass calls (such changes start a pass).
func (p *Prober) Start(ctx context.Context) error {
	if p.Probe == nil {
		p.Probe = httpProbe
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	p.mu.Lock()
	p.results, p.last = map[string]*ProbeResult{}, map[string]time.Time{}
	p.mu.Unlock()
	wake := p.wakeup()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wake:
		}
		timer.Reset(p.round(ctx))
	}
}

// Wake has the prober look at the nodes and the policy now rather than
// when its next probe falls due. It never blocks.
func (p *Prober) Wake() {
	select {
	case p.wakeup() <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (p *Prober) wakeup() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
	return p.wake
}

// round probes the endpoints that are due and returns how long to sleep
// until the next one is.
func (p *Prober) round(ctx context.Context) time.Duration {
	policy := p.Policy()
	if !policy.SignalEnabled(cafev1alpha1.SignalKubeletProbe) {
		return idleProbeWait
	}
	nodes := &corev1.NodeList{}
	// Read only (kubeletEndpoint): the cache's own copies.
	if err := p.Reader.List(ctx, nodes, client.UnsafeDisableDeepCopy); err != nil {
		return time.Second
	}
	now := p.Now()
	period := seconds(policy.Probe.PeriodSeconds)
	timeout := seconds(policy.Probe.TimeoutSeconds)
	threshold := int(policy.Probe.FailureThreshold)
	due := p.dueEndpoints(nodes.Items, now, period, threshold)
	sem := make(chan struct{}, probeConcurrency)
	var wg sync.WaitGroup
	for endpoint, names := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := p.Probe(ctx, endpoint, timeout)
			if ctx.Err() != nil {
				return
			}
			for _, name := range names {
				p.record(name, endpoint, now, err, threshold)
			}
		}()
	}
	wg.Wait()
	return p.untilNextDue(p.Now(), period)
}

// untilNextDue is how long from now until the earliest known endpoint's
// next probe (idleProbeWait when none is known), at least minProbeWait.
func (p *Prober) untilNextDue(now time.Time, period time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	wait := idleProbeWait
	for _, last := range p.last {
		wait = min(wait, last.Add(period).Sub(now))
	}
	return max(wait, minProbeWait)
}

// dueEndpoints groups the nodes by kubelet endpoint and returns those whose
// probe is due at now, each with the nodes it answers for. Nodes that share
// an address and port share a kubelet (kwok's one server answers for all
// its nodes), so one probe per endpoint and period gives every such node
// the same answer that a probe of its own would. Nodes without an endpoint
// are recorded at once (no signal); records of vanished nodes and endpoints
// are dropped.
func (p *Prober) dueEndpoints(nodes []corev1.Node, now time.Time, period time.Duration, threshold int) map[string][]string {
	all := map[string][]string{}
	var noEndpoint []string
	for i := range nodes {
		endpoint := kubeletEndpoint(&nodes[i])
		if endpoint == "" {
			noEndpoint = append(noEndpoint, nodes[i].Name)
			continue
		}
		all[endpoint] = append(all[endpoint], nodes[i].Name)
	}
	for _, name := range noEndpoint {
		p.record(name, "", now, nil, threshold)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	due := map[string][]string{}
	for endpoint, names := range all {
		if now.Before(p.last[endpoint].Add(period)) {
			continue
		}
		p.last[endpoint] = now
		due[endpoint] = names
	}
	for endpoint := range p.last {
		if _, ok := all[endpoint]; !ok {
			delete(p.last, endpoint)
		}
	}
	seen := map[string]bool{}
	for i := range nodes {
		seen[nodes[i].Name] = true
	}
	for name := range p.results {
		if !seen[name] {
			delete(p.results, name)
		}
	}
	return due
}

// record updates the node's run of failures with one probe's outcome and
// calls Changed when the run crosses threshold either way.
func (p *Prober) record(node, endpoint string, at time.Time, err error, threshold int) {
	p.mu.Lock()
	r := p.results[node]
	if r == nil || r.Endpoint != endpoint {
		r = &ProbeResult{Endpoint: endpoint}
		p.results[node] = r
	}
	wasBad := r.ConsecutiveFailures >= threshold
	if endpoint == "" || err == nil {
		r.ConsecutiveFailures, r.FailingSince, r.LastError = 0, time.Time{}, ""
	} else {
		if r.ConsecutiveFailures == 0 {
			r.FailingSince = at
		}
		r.ConsecutiveFailures++
		r.LastError = err.Error()
	}
	turned := wasBad != (r.ConsecutiveFailures >= threshold)
	p.mu.Unlock()
	if turned && p.Changed != nil {
		p.Changed()
	}
}

// kubeletEndpoint is host:port of the node's kubelet ("" when the node
// publishes no port or address).
func kubeletEndpoint(node *corev1.Node) string {
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 {
		return ""
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(int(port)))
			}
		}
	}
	return ""
}

// probeClient keeps one connection per kubelet open between probes: a
// probe is then one request and its answer, where a fresh connection costs
// a TLS handshake (most of CAFE's idle CPU at 100 nodes probed every 5 s).
// A kept connection proves no less: the kubelet must still answer on it
// within the timeout, and a connection the kubelet or the network has
// dropped fails the request (the transport redials only when nothing was
// sent yet), so a dead or partitioned kubelet still fails its probe.
// probeConcurrency is how many probes run at once.
const probeConcurrency = 16

var probeClient = &http.Client{
	Transport: &http.Transport{
		// Liveness only: the kubelet's serving certificate is not verified
		// and no credentials are sent; a classical key exchange is enough
		// and costs a fraction of the post-quantum hybrid's CPU on the
		// handshakes that remain.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519}}, //nolint:gosec // liveness probe, nothing is trusted
		// One probe per endpoint is in flight at a time, so one kept
		// connection per kubelet is enough; closed if unused for longer
		// than any probe period plausibly is.
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2 * time.Minute,
		Proxy:               nil,
	},
	// A redirect is an answer, so the node is alive; following it would
	// let whoever writes a node's status make CAFE send requests to any
	// address (review finding 13).
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// plainHTTP remembers the kubelet endpoints that answered the TLS hello in
// plain HTTP (kwok's simulated kubelets do): they are probed over http://
// afterwards, on a kept connection, instead of a failing TLS handshake
// each time.
var plainHTTP sync.Map

func httpProbe(ctx context.Context, endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, plain := plainHTTP.Load(endpoint); plain {
		if err := get(ctx, "http://"+endpoint+"/healthz"); err == nil {
			return nil
		}
		// It may speak TLS now: ask it that way before failing the probe.
		plainHTTP.Delete(endpoint)
	}
	err := get(ctx, "https://"+endpoint+"/healthz")
	if err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		plainHTTP.Store(endpoint, true)
		return nil // a plain-HTTP server answered
	}
	return err
}

// get sends one GET; any HTTP answer is success. The answer is read to its
// end (a short one: a kubelet's /healthz or 401): a body closed unread
// makes the transport drop the connection, and the next probe would pay a
// new TLS handshake.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	_ = resp.Body.Close()
	return nil
}

// maxProbeBody is the most of an answer the probe reads to keep its
// connection; a longer answer still counts, its connection is dropped.
const maxProbeBody = 64 << 10
