package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/test/framework"
)

// Waits on state poll at this rate until this deadline; nothing sleeps in
// place of a state.
const (
	deadline = 30 * time.Second
	poll     = 20 * time.Millisecond
)

var called = registry.Service{Namespace: "shop", Name: "backend"}

// callingMessage is what the app logs once it calls through the registry.
const callingMessage = "Calling through the registry"

// app is a demo app the test runs.
type app struct {
	url, listen string
	consumer    string // its consumer name
}

// startApp serves o on a loopback port until the test ends, and waits
// until it calls through the registry: its acknowledgement is there and
// the app has said so (the consumer acknowledges before the app holds it,
// and /call answers 503 until it does).
func startApp(t *testing.T, g *WithT, reg *framework.Registry, o options) app {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	o.version, o.slowLatency = "v1", appanswer.DefaultSlowLatency
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	calling := &announced{Handler: slog.NewTextHandler(t.Output(), nil), message: callingMessage, seen: make(chan struct{})}
	log := slog.New(calling)
	go func() { done <- serveOn(ctx, log, o, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
	a := app{url: "http://" + ln.Addr().String(), listen: ln.Addr().String(), consumer: consumerName(o.name, ln.Addr().String())}
	if reg != nil {
		g.Eventually(func(g Gomega) {
			_, found := ackOf(g, reg, a.consumer)
			g.Expect(found).To(BeTrue())
		}).WithTimeout(deadline).WithPolling(poll).Should(Succeed(), "the app's consumer acknowledges")
		select {
		case <-calling.seen:
		case <-time.After(deadline):
			t.Fatalf("the app did not say %q within %s", callingMessage, deadline)
		}
	}
	return a
}

// announced passes records on and closes seen at the first whose message
// is message.
type announced struct {
	slog.Handler
	message string
	seen    chan struct{}
	once    sync.Once
}

func (h *announced) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.message {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

// ackOf reads a consumer's acknowledgement of the called service.
func ackOf(g Gomega, reg *framework.Registry, consumer string) (registry.Ack, bool) {
	key := registry.ConsumerKey(called, consumer)
	resp, err := reg.Client.Get(context.Background(), key)
	g.Expect(err).NotTo(HaveOccurred())
	if len(resp.Kvs) == 0 {
		return registry.Ack{}, false
	}
	ack, err := registry.DecodeAck(key, resp.Kvs[0].Value)
	g.Expect(err).NotTo(HaveOccurred())
	return ack, true
}

// register puts and deletes registrations of the called service in one
// transaction, with its revision key, as the registrar does; it returns
// the revision.
func register(t *testing.T, reg *framework.Registry, put []string, del ...string) int64 {
	t.Helper()
	var ops []clientv3.Op
	for _, a := range put {
		b, _ := json.Marshal(registry.Registration{Address: a, Kind: registry.KindPod, Name: "backend-" + a})
		ops = append(ops, clientv3.OpPut(registry.InstancesPrefix(called)+a, string(b)))
	}
	for _, a := range del {
		ops = append(ops, clientv3.OpDelete(registry.InstancesPrefix(called)+a))
	}
	ops = append(ops, clientv3.OpPut(registry.RevisionKey(called), "changed"))
	resp, err := reg.Client.Txn(t.Context()).Then(ops...).Commit()
	if err != nil {
		t.Fatalf("registering: %v", err)
	}
	return resp.Header.Revision
}

// upstream is an app called: it answers status and body, and counts.
func upstream(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/x-upstream")
		w.Header().Set(appanswer.PodHeader, "pod-"+body)
		w.Header().Set(appanswer.VersionHeader, "v-"+body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// get does GET url and returns the answer with its body read.
func get(g Gomega, url string) (*http.Response, string) {
	resp, err := http.Get(url)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp, string(b)
}

func callOptions(reg *framework.Registry) options {
	return options{name: "web-1", namespace: "shop", registry: []string{reg.Endpoint}, callService: called}
}

func TestCallThroughTheRegistry(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	one, ones := upstream(t, http.StatusCreated, "one")
	two, twos := upstream(t, http.StatusAccepted, "two")
	register(t, reg, []string{hostOf(one), hostOf(two)})

	a := startApp(t, g, reg, callOptions(reg))
	ack, _ := ackOf(g, reg, a.consumer)
	g.Expect(ack.Consumer).To(Equal("demo-app web-1 at " + a.listen))

	// Round robin over both, each answer relayed as it is.
	answers := map[string]int{}
	for range 4 {
		resp, body := get(g, a.url+"/call")
		g.Expect(resp.Header.Get(upstreamHeader)).To(BeElementOf(hostOf(one), hostOf(two)))
		want := map[string]string{hostOf(one): "one", hostOf(two): "two"}[resp.Header.Get(upstreamHeader)]
		g.Expect(body).To(Equal(want), "the upstream's body")
		g.Expect(resp.StatusCode).To(Equal(map[string]int{"one": http.StatusCreated, "two": http.StatusAccepted}[body]), "the upstream's status")
		g.Expect(resp.Header.Get("Content-Type")).To(Equal("text/x-upstream"))
		g.Expect(resp.Header.Get(appanswer.PodHeader)).To(Equal("pod-"+body), "who answered")
		g.Expect(resp.Header.Get(appanswer.VersionHeader)).To(Equal("v-"+body), "who answered")
		g.Expect(resp.Header.Get(callerPodHeader)).To(Equal("web-1"), "who called")
		g.Expect(resp.Header.Get(callerVersionHeader)).NotTo(BeEmpty(), "who called")
		answers[body]++
	}
	g.Expect(answers).To(Equal(map[string]int{"one": 2, "two": 2}))
	g.Expect(ones.Load()).To(BeEquivalentTo(2))
	g.Expect(twos.Load()).To(BeEquivalentTo(2))

	// A deregistration, once acknowledged, is never called again.
	rev := register(t, reg, nil, hostOf(one))
	g.Eventually(func(g Gomega) {
		ack, _ := ackOf(g, reg, a.consumer)
		g.Expect(ack.Revision).To(BeNumerically(">=", rev))
	}).WithTimeout(deadline).WithPolling(poll).Should(Succeed())
	before := ones.Load()
	for range 4 {
		resp, body := get(g, a.url+"/call")
		g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
		g.Expect(body).To(Equal("two"))
	}
	g.Expect(ones.Load()).To(Equal(before))

	// The rest answers as before.
	resp, body := get(g, a.url+appanswer.HealthPath)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body).To(Equal("ok"))
	resp, body = get(g, a.url+"/anything")
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var answer appanswer.Answer
	g.Expect(json.Unmarshal([]byte(body), &answer)).To(Succeed())
	g.Expect(answer).To(Equal(appanswer.Answer{Pod: "web-1", Namespace: "shop", Container: "demo-app", Image: "demo-app:v1", Version: "v1"}))
	resp, _ = get(g, a.url+"/call/more")
	g.Expect(resp.Header.Get(upstreamHeader)).To(BeEmpty(), "only /call calls")
}

func TestCallWithoutInstances(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	a := startApp(t, g, reg, callOptions(reg))
	resp, body := get(g, a.url+"/call")
	g.Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
	g.Expect(body).To(Equal("no instance of shop/backend registered\n"))
}

func TestCallFailuresShow(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	// A loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	closed := ln.Addr().String()
	g.Expect(ln.Close()).To(Succeed())
	register(t, reg, []string{closed})
	a := startApp(t, g, reg, callOptions(reg))

	resp, body := get(g, a.url+"/call")
	g.Expect(resp.StatusCode).To(Equal(http.StatusBadGateway))
	g.Expect(resp.Header.Get(upstreamHeader)).To(Equal(closed))
	g.Expect(body).To(And(ContainSubstring("calling "+closed), ContainSubstring("connection refused")))

	// An address outside loopback and the project's namespaces is never
	// connected to.
	rev := register(t, reg, []string{"10.11.12.13:80"}, closed)
	g.Eventually(func(g Gomega) {
		ack, _ := ackOf(g, reg, a.consumer)
		g.Expect(ack.Revision).To(BeNumerically(">=", rev))
	}).WithTimeout(deadline).WithPolling(poll).Should(Succeed())
	resp, body = get(g, a.url+"/call")
	g.Expect(resp.StatusCode).To(Equal(http.StatusBadGateway))
	g.Expect(body).To(ContainSubstring("refusing to connect to 10.11.12.13:80"))
}

func TestCallWaitsForTheRegistry(t *testing.T) {
	g := NewWithT(t)
	// A loopback port nothing listens on (yet).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	endpoint := "http://" + ln.Addr().String()
	g.Expect(ln.Close()).To(Succeed())

	a := startApp(t, g, nil, options{name: "web-1", registry: []string{endpoint}, callService: called})
	resp, body := get(g, a.url+"/call")
	g.Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
	g.Expect(body).To(ContainSubstring("the registry has not been reached yet"))
	resp, body = get(g, a.url+appanswer.HealthPath)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "healthy without the registry")
	g.Expect(body).To(Equal("ok"))
}

func TestAllowedDestination(t *testing.T) {
	for _, tc := range []struct {
		address string
		ok      bool
	}{
		{"127.0.0.1:80", true},
		{"127.3.2.1:8080", true},
		{"[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"198.18.0.5:8080", true},
		{"198.19.255.254:8080", true},
		{"198.20.0.1:80", false},
		{"10.0.0.1:80", false},
		{"8.8.8.8:53", false},
		{"[2001:db8::1]:80", false},
		{"0.0.0.0:80", false},
	} {
		t.Run(tc.address, func(t *testing.T) {
			err := allowedDestination("tcp", tc.address, nil)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("allowed")
			}
		})
	}
}

func TestConsumerName(t *testing.T) {
	g := NewWithT(t)
	g.Expect(consumerName("web-1", "127.0.0.1:8080")).To(Equal("web-1_127.0.0.1_8080"))
	g.Expect(consumerName("", "[::1]:8080")).To(Equal("demo-app____1__8080"))
	g.Expect(consumerName("café/1", "198.18.0.2:80")).To(Equal("caf__1_198.18.0.2_80"))
	long := consumerName(strings.Repeat("x", 300), "127.0.0.1:8080")
	g.Expect(long).To(HaveLen(253))
	g.Expect(long).To(HaveSuffix("_127.0.0.1_8080"))
}

func TestParseFlagsCall(t *testing.T) {
	const reg = "http://127.0.0.1:2379"
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		err      string // "" when accepted
		registry []string
		service  registry.Service
		delay    time.Duration
	}{
		{name: "neither"},
		{name: "both", args: []string{"--registry", reg, "--call-service", "shop/backend"},
			registry: []string{reg}, service: called},
		{name: "both from the environment", env: map[string]string{"CAFE_REGISTRY": reg + ", http://127.0.0.1:2380", "CAFE_CALL_SERVICE": "shop/backend"},
			registry: []string{reg, "http://127.0.0.1:2380"}, service: called},
		{name: "a classic host's relay", env: map[string]string{"CAFE_REGISTRY": "http://198.19.224.1:10352", "CAFE_CALL_SERVICE": "shop/backend"},
			registry: []string{"http://198.19.224.1:10352"}, service: called},
		{name: "apply delay from the environment", args: []string{"--registry", reg, "--call-service", "shop/backend"},
			env: map[string]string{"CAFE_REGISTRY_APPLY_DELAY": "3s"}, registry: []string{reg}, service: called, delay: 3 * time.Second},
		{name: "the flag overrides the environment's delay", args: []string{"--registry", reg, "--call-service", "shop/backend", "--registry-apply-delay", "1s"},
			env: map[string]string{"CAFE_REGISTRY_APPLY_DELAY": "3s"}, registry: []string{reg}, service: called, delay: time.Second},
		{name: "malformed delay in the environment", env: map[string]string{"CAFE_REGISTRY_APPLY_DELAY": "soon"}, err: "CAFE_REGISTRY_APPLY_DELAY"},
		{name: "delay too long", args: []string{"--registry-apply-delay", "2m"}, err: "--registry-apply-delay"},
		{name: "only --registry", args: []string{"--registry", reg}, err: "--call-service"},
		{name: "only CAFE_REGISTRY (an agent gives it every instance): ignored", env: map[string]string{"CAFE_REGISTRY": reg}},
		{name: "only --call-service", args: []string{"--call-service", "shop/backend"}, err: "--registry"},
		{name: "only CAFE_CALL_SERVICE", env: map[string]string{"CAFE_CALL_SERVICE": "shop/backend"}, err: "--registry"},
		{name: "non-loopback registry", args: []string{"--registry", "http://10.0.0.1:2379", "--call-service", "shop/backend"}, err: "--registry"},
		{name: "service without namespace", args: []string{"--registry", reg, "--call-service", "backend"}, err: "--call-service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			for _, k := range []string{"CAFE_REGISTRY", "CAFE_CALL_SERVICE", "CAFE_REGISTRY_APPLY_DELAY"} {
				t.Setenv(k, tc.env[k])
			}
			o, err := parseFlags(append([]string{"--listen", "127.0.0.1:0"}, tc.args...))
			if tc.err != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(o.registry).To(Equal(tc.registry))
			g.Expect(o.callService).To(Equal(tc.service))
			g.Expect(o.applyDelay).To(Equal(tc.delay))
		})
	}
}

// The registry's absence does not change how the app answers.
func TestWithoutCallNothingChanges(t *testing.T) {
	g := NewWithT(t)
	a := startApp(t, g, nil, options{name: "web-1", namespace: "shop"})
	resp, body := get(g, a.url+"/call")
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(resp.Header.Get(upstreamHeader)).To(BeEmpty())
	g.Expect(body).To(ContainSubstring(fmt.Sprintf("%q", "web-1")), "the app's own answer")
}
