package loadgen

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Counts are the outcomes of the requests due in a span of the run. Once
// the run is over, Sent = OK + Non2xx + ConnErrors + Timeouts.
type Counts struct {
	// Sent is the number of requests sent (Dropped ones excluded).
	Sent int64
	// OK is the number of 2xx answers.
	OK int64
	// Non2xx is the number of other answers, 3xx included (redirects are
	// not followed).
	Non2xx int64
	// ConnErrors is the number of requests that got no answer for another
	// reason than the timeout: refused or reset connections, EOF, a
	// truncated body.
	ConnErrors int64
	// Timeouts is the number of requests that did not finish within
	// Config.Timeout.
	Timeouts int64
	// Dropped is the number of requests due while MaxInFlight were in
	// flight: not sent, and a failure.
	Dropped int64
}

// Failed is the number of requests that were not answered 2xx.
func (c Counts) Failed() int64 { return c.Non2xx + c.ConnErrors + c.Timeouts + c.Dropped }

func (c *Counts) add(o Counts) {
	c.Sent += o.Sent
	c.OK += o.OK
	c.Non2xx += o.Non2xx
	c.ConnErrors += o.ConnErrors
	c.Timeouts += o.Timeouts
	c.Dropped += o.Dropped
}

// Latency is the distribution of the time from sending a request to having
// read its whole answer, over the requests that got an HTTP answer (any
// status). Percentiles are within 1.6 % (see the histogram); Max is exact.
type Latency struct {
	Count              int64
	P50, P90, P99, Max time.Duration
}

// Second is what happened to the requests due in one second of the run.
type Second struct {
	// Index is the second since the start of the run, from 0.
	Index int
	Counts
	// Versions counts the 2xx answers by their X-Cafe-Version header (""
	// when absent); Pods by X-Cafe-Pod.
	Versions map[string]int64
	Pods     map[string]int64
	Latency  Latency
	// Errors are the first few failure messages of the second.
	Errors []string
}

// Served reports whether the second had at least one 2xx answer and no
// failure (dropped requests included).
func (s Second) Served() bool { return s.OK > 0 && s.Failed() == 0 }

// Summary aggregates consecutive seconds of a run.
type Summary struct {
	// FirstSecond and Seconds locate the span: seconds FirstSecond to
	// FirstSecond+Seconds-1.
	FirstSecond, Seconds int
	Counts
	Versions map[string]int64
	Pods     map[string]int64
	Latency  Latency
}

// ErrorSample is one distinct failure message and how often it was seen.
type ErrorSample struct {
	Message string
	// FirstSecond is the second it was first seen in.
	FirstSecond int
	Count       int64
}

// Report is the outcome of a Run.
type Report struct {
	URL      string
	Rate     int
	Start    time.Time
	Duration time.Duration // from Start until the last request finished
	// Total sums every second.
	Total Summary
	// Seconds lists every second in which requests were due, in order;
	// Seconds[i].Index == i.
	Seconds []Second
	// Errors are the distinct failure messages, the first maxErrorSamples
	// of them; later distinct messages count in the last, "(other)".
	Errors []ErrorSample
	// MaxLag is the longest a request was sent after its scheduled time:
	// how far the pacer fell behind.
	MaxLag time.Duration

	hists []histogram
}

// Window summarises the seconds whose start lies in [from, to): adjacent
// windows split the run without overlap. A window outside the run is
// empty.
func (r *Report) Window(from, to time.Time) Summary {
	first := max(secondsCeil(from.Sub(r.Start)), 0)
	end := min(secondsCeil(to.Sub(r.Start)), len(r.Seconds))
	return r.summary(first, end)
}

// secondsCeil is the index of the first second starting at or after d.
func secondsCeil(d time.Duration) int {
	s := int(d / time.Second)
	if d > time.Duration(s)*time.Second {
		s++
	}
	return s
}

// SecondsSummary summarises seconds [first, end) by index.
func (r *Report) SecondsSummary(first, end int) Summary {
	return r.summary(max(first, 0), min(end, len(r.Seconds)))
}

func (r *Report) summary(first, end int) Summary {
	s := Summary{FirstSecond: first, Versions: map[string]int64{}, Pods: map[string]int64{}}
	if end <= first {
		return s
	}
	s.Seconds = end - first
	var h histogram
	for i := first; i < end; i++ {
		sec := r.Seconds[i]
		s.Counts.add(sec.Counts)
		for v, n := range sec.Versions {
			s.Versions[v] += n
		}
		for p, n := range sec.Pods {
			s.Pods[p] += n
		}
		h.merge(&r.hists[i])
	}
	s.Latency = h.latency()
	return s
}

// FailedSeconds lists the seconds with at least one failure.
func (r *Report) FailedSeconds() []Second {
	var out []Second
	for _, s := range r.Seconds {
		if s.Failed() > 0 {
			out = append(out, s)
		}
	}
	return out
}

// UnservedSeconds lists the seconds that were not Served: a failure, or no
// 2xx answer at all.
func (r *Report) UnservedSeconds() []Second {
	var out []Second
	for _, s := range r.Seconds {
		if !s.Served() {
			out = append(out, s)
		}
	}
	return out
}

// CheckEverySecondServed returns nil when the run had at least one second
// and every second was Served; otherwise an error naming the seconds that
// were not, with their counts and first errors.
func (r *Report) CheckEverySecondServed() error {
	if len(r.Seconds) == 0 {
		return fmt.Errorf("no second of load was run against %s", r.URL)
	}
	bad := r.UnservedSeconds()
	if len(bad) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d seconds not served (%d of %d requests failed):", len(bad), len(r.Seconds), r.Total.Failed(), r.Total.Sent+r.Total.Dropped)
	const shown = 10
	for i, s := range bad {
		if i == shown {
			fmt.Fprintf(&b, "\n  … %d more", len(bad)-shown)
			break
		}
		fmt.Fprintf(&b, "\n  second %d: %s", s.Index, FormatCounts(s.Counts))
		if len(s.Errors) > 0 {
			fmt.Fprintf(&b, "; %s", strings.Join(s.Errors, "; "))
		}
	}
	return fmt.Errorf("%s", b.String())
}

// FormatCounts prints c on one line, the zero failure kinds left out.
func FormatCounts(c Counts) string {
	parts := []string{fmt.Sprintf("sent %d", c.Sent), fmt.Sprintf("ok %d", c.OK)}
	for _, f := range []struct {
		name string
		n    int64
	}{{"non-2xx", c.Non2xx}, {"conn errors", c.ConnErrors}, {"timeouts", c.Timeouts}, {"dropped", c.Dropped}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f.name, f.n))
		}
	}
	return strings.Join(parts, ", ")
}

// FormatCountMap prints m as "k=v" pairs sorted by key; "" is shown as
// "(none)", an empty map as "-".
func FormatCountMap(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts[i] = fmt.Sprintf("%s=%d", name, m[k])
	}
	return strings.Join(parts, " ")
}
