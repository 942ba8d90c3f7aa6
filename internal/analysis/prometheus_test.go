package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
)

// exposition is what the test's app serves at /metrics: a canary (shop-v2)
// answering 99.5% of requests, the stable pods (shop-v1) 90%, and a counter
// that never moved.
const exposition = `# TYPE cafe_test_success_ratio gauge
cafe_test_success_ratio{service="shop-v2"} 0.995
cafe_test_success_ratio{service="shop-v1"} 0.9
# TYPE cafe_test_latency_seconds gauge
cafe_test_latency_seconds{service="shop-v2"} 0.2
# TYPE cafe_test_idle_total counter
cafe_test_idle_total{service="shop-v2"} 0
`

// realPrometheus starts Debian's Prometheus (installed by make tools) on
// loopback, scraping a test server every second, and waits until the
// server's series are queryable.
func realPrometheus(t *testing.T) (*controlplane.Prometheus, Prometheus) {
	t.Helper()
	g := NewWithT(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, exposition)
	}))
	t.Cleanup(app.Close)
	ports, err := controlplane.FreePorts(1)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server, err := controlplane.StartPrometheus(ctx, controlplane.PrometheusConfig{
		Dir: t.TempDir(), Port: ports[0], ScrapeInterval: time.Second,
		Jobs: []controlplane.PrometheusJob{{Name: "shop", Targets: []string{strings.TrimPrefix(app.URL, "http://")}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(server.Stop)
	p := Prometheus{URL: server.URL()}
	g.Eventually(func() error {
		_, err := p.Value(ctx, `cafe_test_success_ratio{service="shop-v2"}`, time.Now())
		return err
	}).WithTimeout(time.Minute).WithPolling(200*time.Millisecond).Should(Succeed(), "the first scrape of the test app")
	return server, p
}

func metric(name, query string, op cafev1alpha1.ThresholdOperator, value string) cafev1alpha1.TrafficMetric {
	return cafev1alpha1.TrafficMetric{Name: name, Query: query, Threshold: cafev1alpha1.TrafficThreshold{Operator: op, Value: value}}
}

func TestMeasurementsAgainstARealPrometheus(t *testing.T) {
	server, p := realPrometheus(t)
	ctx := context.Background()
	vars := Vars{Namespace: "shop", Canary: "v2", Stable: "v1"}
	successRate := metric("success-rate", `cafe_test_success_ratio{service="$namespace-$canary"}`, cafev1alpha1.ThresholdAtLeast, "0.99")

	cases := []struct {
		name    string
		metric  cafev1alpha1.TrafficMetric
		outcome cafev1alpha1.AnalysisOutcome
		value   string
		message string
		err     error
	}{
		{name: "the canary's success rate meets its threshold", metric: successRate,
			outcome: cafev1alpha1.AnalysisPassed, value: "0.995", message: "0.995, at least 0.99"},
		{name: "the stable pods' does not", metric: metric("stable-rate", `cafe_test_success_ratio{service="$namespace-$stable"}`, cafev1alpha1.ThresholdAtLeast, "0.99"),
			outcome: cafev1alpha1.AnalysisFailed, value: "0.9", message: "0.9, not at least 0.99"},
		{name: "canary against stable", metric: metric("canary-vs-stable", `sum(cafe_test_success_ratio{service="$namespace-$canary"}) / sum(cafe_test_success_ratio{service="$namespace-$stable"})`, cafev1alpha1.ThresholdGreaterThan, "1"),
			outcome: cafev1alpha1.AnalysisPassed, value: "1.10556"},
		{name: "a scalar", metric: metric("latency", `scalar(cafe_test_latency_seconds)`, cafev1alpha1.ThresholdAtMost, "0.25"),
			outcome: cafev1alpha1.AnalysisPassed, value: "0.2"},
		{name: "no series is no data", metric: metric("missing", `cafe_test_missing{service="$namespace-$canary"}`, cafev1alpha1.ThresholdAtLeast, "0"),
			outcome: cafev1alpha1.AnalysisInconclusive, err: ErrNoData},
		{name: "zero requests over zero is no data, not a pass", metric: metric("idle", `sum(cafe_test_idle_total) / sum(cafe_test_idle_total)`, cafev1alpha1.ThresholdAtMost, "1"),
			outcome: cafev1alpha1.AnalysisInconclusive, err: ErrNoData},
		{name: "several series are not one number", metric: metric("all", `cafe_test_success_ratio`, cafev1alpha1.ThresholdAtLeast, "0"),
			outcome: cafev1alpha1.AnalysisInconclusive, err: ErrNotOneNumber},
		{name: "a query Prometheus refuses", metric: metric("bad", `rate(cafe_test_idle_total)`, cafev1alpha1.ThresholdAtLeast, "0"),
			outcome: cafev1alpha1.AnalysisInconclusive, err: ErrBadQuery},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			m := Measure(ctx, p, &cafev1alpha1.TrafficAnalysisSpec{Metrics: []cafev1alpha1.TrafficMetric{c.metric}}, vars, time.Now())
			g.Expect(m.Outcome).To(Equal(c.outcome))
			g.Expect(m.Metrics).To(HaveLen(1))
			got := m.Metrics[0]
			g.Expect(got.Query).NotTo(ContainSubstring("$"), "placeholders are replaced before the query is sent")
			g.Expect(got.Value).To(Equal(c.value))
			if c.message != "" {
				g.Expect(got.Message).To(Equal(c.message))
			}
			if c.err != nil {
				_, err := p.Value(ctx, got.Query, time.Now())
				g.Expect(err).To(MatchError(c.err))
				g.Expect(got.Message).To(Equal(err.Error()))
			}
		})
	}

	t.Run("a measurement fails on any failed metric, else waits on any inconclusive one", func(t *testing.T) {
		g := NewWithT(t)
		missing, stable := cases[4].metric, cases[1].metric
		spec := &cafev1alpha1.TrafficAnalysisSpec{Metrics: []cafev1alpha1.TrafficMetric{successRate, missing}}
		g.Expect(Measure(ctx, p, spec, vars, time.Now()).Outcome).To(Equal(cafev1alpha1.AnalysisInconclusive))
		spec.Metrics = append(spec.Metrics, stable)
		m := Measure(ctx, p, spec, vars, time.Now())
		g.Expect(m.Outcome).To(Equal(cafev1alpha1.AnalysisFailed))
		g.Expect(m.Summary()).To(Equal("Failed: stable-rate: 0.9, not at least 0.99"))
	})

	t.Run("Prometheus parses queries for admission", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(p.CheckSyntax(ctx, `sum(rate(cafe_test_idle_total[30s]))`)).To(Succeed())
		err := p.CheckSyntax(ctx, `sum(rate(cafe_test_idle_total[30s])`)
		g.Expect(err).To(MatchError(ErrBadQuery))
		g.Expect(err.Error()).To(ContainSubstring("unclosed left parenthesis"))
	})

	t.Run("Prometheus stopped: inconclusive; back: measured again", func(t *testing.T) {
		g := NewWithT(t)
		spec := &cafev1alpha1.TrafficAnalysisSpec{Metrics: []cafev1alpha1.TrafficMetric{successRate}}
		server.Stop()
		m := Measure(ctx, p, spec, vars, time.Now())
		g.Expect(m.Outcome).To(Equal(cafev1alpha1.AnalysisInconclusive))
		g.Expect(m.Metrics[0].Message).To(HavePrefix(ErrUnreachable.Error()))
		g.Expect(errors.Is(p.CheckSyntax(ctx, "up"), ErrUnreachable)).To(BeTrue())

		g.Expect(server.Restart(ctx)).To(Succeed())
		g.Eventually(func() cafev1alpha1.AnalysisOutcome {
			return Measure(ctx, p, spec, vars, time.Now()).Outcome
		}).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).Should(Equal(cafev1alpha1.AnalysisPassed))
	})
}
