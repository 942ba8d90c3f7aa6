package loadgen

// Runs against httptest servers, which listen on 127.0.0.1. Timing bounds
// are generous on purpose (a loaded 2-core machine); the counts are exact
// where the open model makes them so.

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// pod answers as an emulated pod does.
func pod(name, version string, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(PodHeader, name)
		w.Header().Set(VersionHeader, version)
		w.WriteHeader(status)
		_, _ = w.Write([]byte("hello\n"))
	}
}

// arrivals records when each request reached the server.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
}

func (a *arrivals) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.times = append(a.times, time.Now())
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (a *arrivals) get() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.times)
}

func TestSendsAtTheRateAndReusesConnections(t *testing.T) {
	g := NewWithT(t)
	var arr arrivals
	var hostSeen, headerSeen atomic.Value
	srv := httptest.NewServer(arr.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hostSeen.Store(r.Host)
		headerSeen.Store(r.Header.Get("X-Test"))
		pod("web-1", "v1", http.StatusOK)(w, r)
	})))
	defer srv.Close()

	var dials atomic.Int64
	report, err := run(context.Background(), Config{
		URL: srv.URL + "/", Host: "shop.example", Headers: http.Header{"X-Test": {"yes"}},
		Rate: 200, Duration: 2 * time.Second,
	}, func(string) { dials.Add(1) })
	g.Expect(err).NotTo(HaveOccurred())

	// Exactly Rate × Duration requests are due, and a fast server leaves
	// none dropped.
	g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 400, OK: 400}))
	g.Expect(report.Seconds).To(HaveLen(2))
	for _, s := range report.Seconds {
		g.Expect(s.Sent).To(BeEquivalentTo(200))
		g.Expect(s.Served()).To(BeTrue())
		g.Expect(s.Versions).To(Equal(map[string]int64{"v1": 200}))
		g.Expect(s.Pods).To(Equal(map[string]int64{"web-1": 200}))
	}
	g.Expect(report.CheckEverySecondServed()).To(Succeed())
	g.Expect(report.UnservedSeconds()).To(BeEmpty())
	g.Expect(report.FailedSeconds()).To(BeEmpty())
	g.Expect(hostSeen.Load()).To(Equal("shop.example"))
	g.Expect(headerSeen.Load()).To(Equal("yes"))

	// Spread over the two seconds, not sent in a burst: the arrivals span
	// about 2 s (request 399 is due at 1.995 s), and the first second of
	// arrivals holds about half of them.
	times := arr.get()
	g.Expect(times).To(HaveLen(400))
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	span := times[len(times)-1].Sub(times[0])
	g.Expect(span).To(BeNumerically(">", 1500*time.Millisecond))
	g.Expect(span).To(BeNumerically("<", 4*time.Second))
	inFirstSecond := 0
	for _, at := range times {
		if at.Sub(times[0]) < time.Second {
			inFirstSecond++
		}
	}
	g.Expect(inFirstSecond).To(BeNumerically("~", 200, 80))
	g.Expect(report.Duration).To(BeNumerically(">=", 1990*time.Millisecond))

	// Keep-alive: a handful of connections, not one per request.
	g.Expect(dials.Load()).To(BeNumerically("<=", 50))
	g.Expect(report.Total.Latency.Count).To(BeEquivalentTo(400))
	g.Expect(report.Total.Latency.P50).To(BeNumerically(">", 0))
	g.Expect(report.Total.Latency.Max).To(BeNumerically(">=", report.Total.Latency.P99))
}

func TestNon2xxAnswersAreFailures(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(pod("web-3", "v3-fail", http.StatusInternalServerError))
	defer srv.Close()

	report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 50, Duration: time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 50, Non2xx: 50}))
	g.Expect(report.Total.Versions).To(BeEmpty(), "versions count 2xx answers only")
	g.Expect(report.Total.Latency.Count).To(BeEquivalentTo(50), "a 500 is an answer: its latency counts")
	g.Expect(report.UnservedSeconds()).To(HaveLen(1))
	g.Expect(report.FailedSeconds()).To(HaveLen(1))
	g.Expect(report.Seconds[0].Errors).To(HaveLen(errorsPerSecond))
	g.Expect(report.Seconds[0].Errors[0]).To(Equal(`HTTP 500 from pod "web-3" version "v3-fail"`))
	g.Expect(report.Errors).To(Equal([]ErrorSample{{Message: `HTTP 500 from pod "web-3" version "v3-fail"`, FirstSecond: 0, Count: 50}}))
	g.Expect(report.CheckEverySecondServed()).To(MatchError(ContainSubstring("second 0: sent 50, ok 0, non-2xx 50; HTTP 500")))
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.1.2.3/elsewhere", http.StatusFound)
	}))
	defer srv.Close()

	var mu sync.Mutex
	var dialed []string
	report, err := run(context.Background(), Config{URL: srv.URL, Rate: 20, Duration: time.Second}, func(addr string) {
		mu.Lock()
		defer mu.Unlock()
		dialed = append(dialed, addr)
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 20, Non2xx: 20}))
	g.Expect(report.Errors[0].Message).To(ContainSubstring(`HTTP 302 to "http://10.1.2.3/elsewhere" (redirects are not followed)`))
	for _, addr := range dialed {
		g.Expect(addr).To(Equal(srv.Listener.Addr().String()))
	}
}

func TestConnectionErrorsAreCounted(t *testing.T) {
	t.Run("a closed port refuses every connection", func(t *testing.T) {
		g := NewWithT(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		g.Expect(err).NotTo(HaveOccurred())
		addr := l.Addr().String()
		g.Expect(l.Close()).To(Succeed())

		report, err := Run(context.Background(), Config{URL: "http://" + addr + "/", Rate: 20, Duration: time.Second})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 20, ConnErrors: 20}))
		g.Expect(report.Total.Latency.Count).To(BeZero(), "no answer, no latency")
		g.Expect(report.Seconds[0].Errors[0]).To(ContainSubstring("connection refused"))
		g.Expect(report.CheckEverySecondServed()).To(HaveOccurred())
	})
	t.Run("a server that closes the connection without answering", func(t *testing.T) {
		g := NewWithT(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		defer srv.Close()

		report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 20, Duration: time.Second})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 20, ConnErrors: 20}))
		g.Expect(report.Errors[0].Message).To(ContainSubstring("EOF"))
	})
	t.Run("a server slower than the timeout", func(t *testing.T) {
		g := NewWithT(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer srv.Close()

		report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 10, Duration: time.Second, Timeout: 200 * time.Millisecond})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 10, Timeouts: 10}))
		g.Expect(report.Errors[0].Message).To(HavePrefix("timeout (200ms)"))
	})
}

func TestVersionsAreAttributedToTheSecondTheRequestWasDueIn(t *testing.T) {
	g := NewWithT(t)
	// v1 answers the first 100 requests to arrive, v2 the rest: the rollout
	// happens between second 0 and second 1.
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 100 {
			pod("web-v1-0", "v1", http.StatusOK)(w, r)
			return
		}
		i := n.Load() % 2
		pod("web-v2-"+strconv.FormatInt(i, 10), "v2", http.StatusOK)(w, r)
	}))
	defer srv.Close()

	report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: 3 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(report.Total.Versions).To(Equal(map[string]int64{"v1": 100, "v2": 200}))
	g.Expect(report.Total.Pods).To(HaveKeyWithValue("web-v1-0", BeEquivalentTo(100)))
	g.Expect(report.Total.Pods).To(HaveLen(3))
	g.Expect(report.Seconds).To(HaveLen(3))
	// Requests due at the edge of second 0 may arrive out of order.
	g.Expect(report.Seconds[0].Versions["v1"]).To(BeNumerically(">=", 90))
	g.Expect(report.Seconds[1].Versions["v2"]).To(BeNumerically(">=", 90))
	g.Expect(report.Seconds[2].Versions).To(Equal(map[string]int64{"v2": 100}))
	g.Expect(report.CheckEverySecondServed()).To(Succeed())
}

// The open model: requests are due on the clock, not when earlier ones
// answer. A server that holds every request until it has seen all of them
// would starve a closed-loop generator; here all are sent and answered.
func TestASlowServerDoesNotSlowThePacer(t *testing.T) {
	g := NewWithT(t)
	const want = 100
	var inFlight, maxInFlight atomic.Int64
	var seen atomic.Int64
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		if seen.Add(1) == want {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(8 * time.Second):
		}
		pod("slow", "v1", http.StatusOK)(w, r)
	}))
	defer srv.Close()

	report, err := Run(context.Background(), Config{URL: srv.URL, Rate: want, Duration: time.Second, Timeout: 15 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(report.Total.Counts).To(Equal(Counts{Sent: want, OK: want}))
	g.Expect(maxInFlight.Load()).To(BeEquivalentTo(want), "every request was in flight at once")
	g.Expect(report.Duration).To(BeNumerically("<", 7*time.Second), "the server released them on the last arrival")
}

func TestRequestsBeyondMaxInFlightAreDropped(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2500 * time.Millisecond) // longer than the run
		pod("slow", "v1", http.StatusOK)(w, r)
	}))
	defer srv.Close()

	report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: time.Second, Timeout: 10 * time.Second, MaxInFlight: 20})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(report.Total.Counts).To(Equal(Counts{Sent: 20, OK: 20, Dropped: 80}))
	g.Expect(report.Total.Failed()).To(BeEquivalentTo(80))
	g.Expect(report.Seconds[0].Served()).To(BeFalse(), "a dropped request is a failure")
	g.Expect(report.Errors).To(Equal([]ErrorSample{{Message: "dropped: 20 requests already in flight", Count: 80}}))
}

func TestOnSecondReportsEachSecondInOrderOnceComplete(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(pod("web-1", "v1", http.StatusOK))
	defer srv.Close()

	var got []Second
	var at []time.Time
	start := time.Now()
	report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 50, Duration: 3 * time.Second, OnSecond: func(s Second) {
		got = append(got, s) // one goroutine calls OnSecond
		at = append(at, time.Now())
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(report.Seconds), "each second once, in order, complete")
	g.Expect(got).To(HaveLen(3))
	g.Expect(at[0].Sub(start)).To(BeNumerically("<", 2500*time.Millisecond), "second 0 is reported while the run goes on")
}

func TestStoppingTheRun(t *testing.T) {
	slowPod := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		pod("web-1", "v1", http.StatusOK)(w, r)
	}
	t.Run("cancelling a run of Duration 0 ends it and lets the requests in flight finish", func(t *testing.T) {
		g := NewWithT(t)
		srv := httptest.NewServer(http.HandlerFunc(slowPod))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()

		report, err := Run(ctx, Config{URL: srv.URL, Rate: 40})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(report.Seconds).To(HaveLen(2))
		g.Expect(report.Total.Sent).To(BeNumerically("~", 60, 20))
		g.Expect(report.Total.OK).To(Equal(report.Total.Sent), "cancelling fails no request")
	})
	t.Run("cancelling a run before its Duration is an error, with the report", func(t *testing.T) {
		g := NewWithT(t)
		srv := httptest.NewServer(http.HandlerFunc(slowPod))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()

		report, err := Run(ctx, Config{URL: srv.URL, Rate: 40, Duration: 10 * time.Second})
		g.Expect(err).To(MatchError(context.DeadlineExceeded))
		g.Expect(err).To(MatchError(ContainSubstring("of 10s")))
		g.Expect(report).NotTo(BeNil())
		g.Expect(report.Total.Sent).To(BeNumerically(">", 0))
		g.Expect(report.Total.OK).To(Equal(report.Total.Sent))
	})
}

// Latency before and during a (simulated) slow phase, compared by window.
func TestWindowsCompareLatency(t *testing.T) {
	g := NewWithT(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 100 {
			time.Sleep(100 * time.Millisecond)
		}
		pod("web-1", "v1", http.StatusOK)(w, r)
	}))
	defer srv.Close()

	report, err := Run(context.Background(), Config{URL: srv.URL, Rate: 100, Duration: 2 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	mid := report.Start.Add(time.Second)
	before, during := report.Window(report.Start, mid), report.Window(mid, report.Start.Add(time.Hour))
	g.Expect(before.FirstSecond).To(Equal(0))
	g.Expect(before.Seconds).To(Equal(1))
	g.Expect(during.FirstSecond).To(Equal(1))
	g.Expect(during.Seconds).To(Equal(1))
	g.Expect(before.Sent + during.Sent).To(BeEquivalentTo(200))
	g.Expect(during.Latency.P50).To(BeNumerically(">=", 100*time.Millisecond))
	g.Expect(before.Latency.P50).To(BeNumerically("<", during.Latency.P50))
}
