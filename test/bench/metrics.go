package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// counts are counters by key; a delta of two scrapes is also counts.
type counts[K comparable] map[K]float64

func (c counts[K]) total() float64 {
	var sum float64
	for _, v := range c {
		sum += v
	}
	return sum
}

// minus is c − before, key by key (a counter missing before counts from 0).
func (c counts[K]) minus(before counts[K]) counts[K] {
	out := counts[K]{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// entry is one key of counts with its value.
type entry[K comparable] struct {
	Key   K
	Value float64
}

// sorted returns the entries, largest first; ties by key text.
func (c counts[K]) sorted() []entry[K] {
	out := make([]entry[K], 0, len(c))
	for k, v := range c {
		out = append(out, entry[K]{k, v})
	}
	slices.SortFunc(out, func(a, b entry[K]) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return cmp.Compare(fmt.Sprint(a.Key), fmt.Sprint(b.Key))
	})
	return out
}

// writeKey is one kind of API write as the apiserver counts it: the verb and
// the resource, with its API group and subresource.
type writeKey struct {
	Verb     string
	Resource string
}

func (k writeKey) String() string { return k.Verb + " " + k.Resource }

// rejectedKey is a write that did not succeed, with its status code.
type rejectedKey struct {
	writeKey
	Code string
}

func (k rejectedKey) String() string { return k.writeKey.String() + " → " + k.Code }

// writeVerbs are the apiserver_request_total verbs that change state.
var writeVerbs = []string{"POST", "PUT", "PATCH", "DELETE", "APPLY"}

// apiWrites is what one scrape of the apiserver's /metrics says about writes
// since it started: successful ones (2xx) and the others.
type apiWrites struct {
	OK       counts[writeKey]
	Rejected counts[rejectedKey]
}

func (w apiWrites) minus(before apiWrites) apiWrites {
	return apiWrites{OK: w.OK.minus(before.OK), Rejected: w.Rejected.minus(before.Rejected)}
}

// writesFromFamilies sums apiserver_request_total over the write verbs.
func writesFromFamilies(families map[string]*dto.MetricFamily) (apiWrites, error) {
	fam, ok := families["apiserver_request_total"]
	if !ok {
		return apiWrites{}, fmt.Errorf("the apiserver's /metrics has no apiserver_request_total")
	}
	w := apiWrites{OK: counts[writeKey]{}, Rejected: counts[rejectedKey]{}}
	for _, m := range fam.GetMetric() {
		l := labels(m)
		if !slices.Contains(writeVerbs, l["verb"]) {
			continue
		}
		key := writeKey{Verb: l["verb"], Resource: resourceName(l["resource"], l["group"], l["subresource"])}
		if strings.HasPrefix(l["code"], "2") {
			w.OK[key] += m.GetCounter().GetValue()
		} else {
			w.Rejected[rejectedKey{key, l["code"]}] += m.GetCounter().GetValue()
		}
	}
	return w, nil
}

// resourceName spells a resource as kubectl does ("deployments.apps"),
// with its subresource ("pods/status").
func resourceName(resource, group, subresource string) string {
	name := resource
	if group != "" {
		name += "." + group
	}
	if subresource != "" {
		name += "/" + subresource
	}
	return name
}

// clientStats is what a client's own client-go metrics say: its requests by
// HTTP method and status code (rest_client_requests_total), and for a
// controller-runtime manager its reconciles per controller, how long they
// took and how long their requests waited in the work queue first.
type clientStats struct {
	Requests   counts[methodCode]
	Reconciles counts[string]
	// ReconcileSeconds sums, per controller, the reconciles' durations
	// (controller_runtime_reconcile_time_seconds): the writes a reconcile
	// waits for are part of it.
	ReconcileSeconds counts[string]
	// QueuedSeconds sums, per controller, how long requests waited in its
	// work queue before a reconcile took them
	// (workqueue_queue_duration_seconds): a request for a set whose
	// reconcile is in progress waits for it to end.
	QueuedSeconds counts[string]
	// RateLimited is the seconds its requests waited for the client's own
	// rate limit (rest_client_rate_limiter_duration_seconds, summed over
	// requests; concurrent waits add up), -1 when it does not export it.
	RateLimited float64
}

// methodCode is an HTTP method and status code.
type methodCode struct{ Method, Code string }

func (s clientStats) minus(before clientStats) clientStats {
	limited := float64(-1)
	if s.RateLimited >= 0 && before.RateLimited >= 0 {
		limited = s.RateLimited - before.RateLimited
	}
	return clientStats{
		Requests:         s.Requests.minus(before.Requests),
		Reconciles:       s.Reconciles.minus(before.Reconciles),
		ReconcileSeconds: s.ReconcileSeconds.minus(before.ReconcileSeconds),
		QueuedSeconds:    s.QueuedSeconds.minus(before.QueuedSeconds),
		RateLimited:      limited,
	}
}

// reconcileMeans is a controller's average reconcile duration and work
// queue wait (zero when it ran no reconcile).
func (s clientStats) reconcileMeans(name string) (took, queued time.Duration) {
	n := s.Reconciles[name]
	if n < 1 {
		return 0, 0
	}
	perReconcile := func(sum float64) time.Duration { return time.Duration(sum / n * float64(time.Second)) }
	return perReconcile(s.ReconcileSeconds[name]), perReconcile(s.QueuedSeconds[name])
}

// successfulWrites counts the client's write requests answered with 2xx.
func (s clientStats) successfulWrites() float64 {
	var n float64
	for k, v := range s.Requests {
		if isWriteMethod(k.Method) && strings.HasPrefix(k.Code, "2") {
			n += v
		}
	}
	return n
}

// failedWrites counts the client's write requests answered otherwise.
func (s clientStats) failedWrites() float64 {
	var n float64
	for k, v := range s.Requests {
		if isWriteMethod(k.Method) && !strings.HasPrefix(k.Code, "2") {
			n += v
		}
	}
	return n
}

// writesByMethod counts successful writes per HTTP method.
func (s clientStats) writesByMethod() counts[string] {
	out := counts[string]{}
	for k, v := range s.Requests {
		if isWriteMethod(k.Method) && strings.HasPrefix(k.Code, "2") {
			out[k.Method] += v
		}
	}
	return out
}

func isWriteMethod(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// clientStatsFromFamilies reads rest_client_requests_total and
// controller-runtime's reconcile and work queue metrics; ok is false when
// the component does not export its client's requests.
func clientStatsFromFamilies(families map[string]*dto.MetricFamily) (clientStats, bool) {
	s := clientStats{Requests: counts[methodCode]{}, Reconciles: counts[string]{}, ReconcileSeconds: counts[string]{}, QueuedSeconds: counts[string]{}, RateLimited: -1}
	fam, ok := families["rest_client_requests_total"]
	if !ok {
		return s, false
	}
	if fam, ok := families["rest_client_rate_limiter_duration_seconds"]; ok {
		s.RateLimited = 0
		for _, m := range fam.GetMetric() {
			s.RateLimited += m.GetHistogram().GetSampleSum()
		}
	}
	for _, m := range fam.GetMetric() {
		l := labels(m)
		s.Requests[methodCode{Method: strings.ToUpper(l["method"]), Code: l["code"]}] += m.GetCounter().GetValue()
	}
	if fam, ok := families["controller_runtime_reconcile_total"]; ok {
		for _, m := range fam.GetMetric() {
			s.Reconciles[labels(m)["controller"]] += m.GetCounter().GetValue()
		}
	}
	sumHistograms(s.ReconcileSeconds, families["controller_runtime_reconcile_time_seconds"], "controller")
	sumHistograms(s.QueuedSeconds, families["workqueue_queue_duration_seconds"], "name")
	return s, true
}

// sumHistograms adds each histogram's sum of observations into into, keyed
// by the value of its label key; a family the component does not export
// adds nothing.
func sumHistograms(into counts[string], fam *dto.MetricFamily, key string) {
	for _, m := range fam.GetMetric() {
		into[labels(m)[key]] += m.GetHistogram().GetSampleSum()
	}
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// scrape fetches a Prometheus text endpoint and parses it.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("building request for %s: %w", url, err)
	}
	// Text format preferred; "*/*" for servers (kwok's go-restful) that
	// refuse a request accepting nothing else.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("scraping %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics of %s: %w", url, err)
	}
	return families, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
