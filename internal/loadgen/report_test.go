package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestHistogramQuantilesAreWithinTheirPrecision(t *testing.T) {
	g := NewWithT(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var samples []time.Duration
	for range 20000 {
		// Log-uniform from 10 µs to 10 s.
		d := time.Duration(float64(10*time.Microsecond) * math.Pow(10, rng.Float64()*6))
		samples = append(samples, d)
		h.add(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := samples[int(q*float64(len(samples)))-1+boolInt(q == 0)]
		got := h.quantile(q)
		g.Expect(float64(got)).To(BeNumerically("~", float64(exact), float64(exact)/60+float64(time.Microsecond)), "q=%v", q)
	}
	g.Expect(h.latency().Max).To(Equal(samples[len(samples)-1]))
	g.Expect(h.latency().Count).To(BeEquivalentTo(len(samples)))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestBucketsCoverEveryLatencyOnce(t *testing.T) {
	g := NewWithT(t)
	prev := int32(-1)
	for us := int64(0); us < 1<<16; us++ {
		d := time.Duration(us) * time.Microsecond
		b := bucketOf(d)
		g.Expect(b == prev || b == prev+1).To(BeTrue(), "buckets are contiguous at %d µs", us)
		g.Expect(upperBound(b)).To(BeNumerically(">=", d))
		g.Expect(float64(upperBound(b) - d)).To(BeNumerically("<=", float64(d)/64))
		prev = b
	}
	g.Expect(bucketOf(-time.Second)).To(BeZero())
	g.Expect(upperBound(bucketOf(time.Hour))).To(BeNumerically("~", time.Hour, time.Hour/64))
}

// report builds a Report from per-second latencies, all answered 2xx by
// version.
func report(start time.Time, seconds ...[]time.Duration) *Report {
	r := &runner{start: start, errIndex: map[string]int{}, cfg: Config{URL: "http://127.0.0.1/", Rate: 10}}
	for i, lats := range seconds {
		s := &secondState{versions: map[string]int64{}, pods: map[string]int64{}}
		for _, l := range lats {
			s.counts.Sent++
			s.counts.OK++
			s.versions["v"+string(rune('1'+i))]++
			s.pods["p"]++
			s.hist.add(l)
		}
		r.seconds = append(r.seconds, s)
	}
	return r.report(start.Add(time.Duration(len(seconds)) * time.Second))
}

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestWindowTakesTheSecondsStartingInIt(t *testing.T) {
	start := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	rep := report(start, ms(1, 1, 2), ms(2, 3), ms(50, 60, 70), ms(4))
	at := func(d time.Duration) time.Time { return start.Add(d) }
	tests := []struct {
		name          string
		from, to      time.Time
		first, n      int
		sent          int64
		versions      map[string]int64
		p50, p99, max time.Duration
	}{
		{"the whole run", at(0), at(time.Hour), 0, 4, 9, map[string]int64{"v1": 3, "v2": 2, "v3": 3, "v4": 1}, 3 * time.Millisecond, 70 * time.Millisecond, 70 * time.Millisecond},
		{"before the slow second", at(0), at(2 * time.Second), 0, 2, 5, map[string]int64{"v1": 3, "v2": 2}, 2 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond},
		{"a window starting mid-second begins at the next second", at(1500 * time.Millisecond), at(3 * time.Second), 2, 1, 3, map[string]int64{"v3": 3}, 60 * time.Millisecond, 70 * time.Millisecond, 70 * time.Millisecond},
		{"a window ending mid-second includes the second that started in it", at(1500 * time.Millisecond), at(2500 * time.Millisecond), 2, 1, 3, map[string]int64{"v3": 3}, 60 * time.Millisecond, 70 * time.Millisecond, 70 * time.Millisecond},
		{"a window before the run is empty", at(-time.Hour), at(0), 0, 0, 0, map[string]int64{}, 0, 0, 0},
		{"a window inside one second is empty", at(100 * time.Millisecond), at(900 * time.Millisecond), 1, 0, 0, map[string]int64{}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := rep.Window(tt.from, tt.to)
			g.Expect(s.FirstSecond).To(Equal(tt.first))
			g.Expect(s.Seconds).To(Equal(tt.n))
			g.Expect(s.Sent).To(Equal(tt.sent))
			g.Expect(s.Versions).To(Equal(tt.versions))
			g.Expect(float64(s.Latency.P50)).To(BeNumerically("~", float64(tt.p50), float64(tt.p50)/60))
			g.Expect(float64(s.Latency.P99)).To(BeNumerically("~", float64(tt.p99), float64(tt.p99)/60))
			g.Expect(s.Latency.Max).To(Equal(tt.max))
		})
	}
	g := NewWithT(t)
	g.Expect(rep.Total).To(Equal(rep.Window(start, start.Add(time.Hour))))
	g.Expect(rep.SecondsSummary(1, 3)).To(Equal(rep.Window(at(time.Second), at(3*time.Second))))
}

func TestServedSeconds(t *testing.T) {
	start := time.Now()
	rep := report(start, ms(1), ms(1), ms(1), nil)
	rep.Seconds[1].Non2xx = 1
	rep.Seconds[1].Errors = []string{"HTTP 500"}
	rep.Seconds[2].Dropped = 1
	tests := []struct {
		name   string
		second Second
		served bool
	}{
		{"2xx answers only", rep.Seconds[0], true},
		{"a 500 among them", rep.Seconds[1], false},
		{"a dropped request", rep.Seconds[2], false},
		{"no answer at all", rep.Seconds[3], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(tt.second.Served()).To(Equal(tt.served))
		})
	}
	g := NewWithT(t)
	g.Expect(indexes(rep.FailedSeconds())).To(Equal([]int{1, 2}))
	g.Expect(indexes(rep.UnservedSeconds())).To(Equal([]int{1, 2, 3}))
	err := rep.CheckEverySecondServed()
	g.Expect(err).To(MatchError(ContainSubstring("3 of 4 seconds not served")))
	g.Expect(err).To(MatchError(ContainSubstring("second 1: sent 1, ok 1, non-2xx 1; HTTP 500")))
	g.Expect(err).To(MatchError(ContainSubstring("second 3: sent 0, ok 0")))
	g.Expect((&Report{URL: "http://127.0.0.1/"}).CheckEverySecondServed()).To(MatchError(ContainSubstring("no second of load")))
}

func indexes(ss []Second) []int {
	var out []int
	for _, s := range ss {
		out = append(out, s.Index)
	}
	return out
}

func TestErrorSamplesAreBounded(t *testing.T) {
	g := NewWithT(t)
	r := &runner{errIndex: map[string]int{}}
	s := &secondState{}
	for i := range 100 {
		r.recordError(i/10, s, "error "+string(rune('A'+i%30)))
	}
	r.recordError(0, s, string(make([]byte, 1000)))
	g.Expect(s.errors).To(HaveLen(errorsPerSecond))
	g.Expect(r.errors).To(HaveLen(maxErrorSamples))
	g.Expect(r.errors[0]).To(Equal(ErrorSample{Message: "error A", FirstSecond: 0, Count: 4}))
	last := r.errors[maxErrorSamples-1]
	g.Expect(last.Message).To(Equal(otherErrors))
	var total int64
	for _, e := range r.errors {
		total += e.Count
	}
	g.Expect(total).To(BeEquivalentTo(101))
}

func TestFormat(t *testing.T) {
	g := NewWithT(t)
	g.Expect(FormatCounts(Counts{Sent: 10, OK: 7, Non2xx: 1, Timeouts: 2})).To(Equal("sent 10, ok 7, non-2xx 1, timeouts 2"))
	g.Expect(FormatCountMap(map[string]int64{"v2": 3, "": 1, "v1": 2})).To(Equal("(none)=1 v1=2 v2=3"))
	g.Expect(FormatCountMap(nil)).To(Equal("-"))
}
