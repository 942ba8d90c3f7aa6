package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// managerMetrics is what a controller-runtime manager exports, cut to the
// families the benchmark reads, at a given number of reconciles and
// seconds spent reconciling and queued.
func managerMetrics(reconciles int, reconcileSeconds, queuedSeconds float64) string {
	return `# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PATCH"} 10
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="inplaceset",result="success"} ` + itoa(reconciles) + `
# TYPE controller_runtime_reconcile_time_seconds histogram
controller_runtime_reconcile_time_seconds_bucket{controller="inplaceset",le="+Inf"} ` + itoa(reconciles) + `
controller_runtime_reconcile_time_seconds_sum{controller="inplaceset"} ` + ftoa(reconcileSeconds) + `
controller_runtime_reconcile_time_seconds_count{controller="inplaceset"} ` + itoa(reconciles) + `
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{controller="inplaceset",name="inplaceset",le="+Inf"} ` + itoa(reconciles) + `
workqueue_queue_duration_seconds_sum{controller="inplaceset",name="inplaceset"} ` + ftoa(queuedSeconds) + `
workqueue_queue_duration_seconds_count{controller="inplaceset",name="inplaceset"} ` + itoa(reconciles) + `
`
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// clientStatsOfText is what the benchmark reads from a scrape of text.
func clientStatsOfText(t *testing.T, text string) clientStats {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := clientStatsFromFamilies(families)
	if !ok {
		t.Fatal("no client requests read")
	}
	return s
}

func TestReconcileDurationsAndQueueWaitsAreReadPerControllerAndDiffed(t *testing.T) {
	g := NewWithT(t)
	before := clientStatsOfText(t, managerMetrics(243, 43.0, 39.0))
	after := clientStatsOfText(t, managerMetrics(981, 131.0, 113.8))
	d := after.minus(before)

	g.Expect(d.Reconciles["inplaceset"]).To(BeNumerically("==", 738))
	g.Expect(d.ReconcileSeconds["inplaceset"]).To(BeNumerically("~", 88.0, 1e-9))
	g.Expect(d.QueuedSeconds["inplaceset"]).To(BeNumerically("~", 74.8, 1e-9))
}

func TestReconcileLatencyIsReportedPerReconcileAndAsReconcilesInProgress(t *testing.T) {
	g := NewWithT(t)
	s := clientStatsOfText(t, managerMetrics(800, 96.0, 40.0))

	// 800 reconciles of 120 ms, 50 ms queued each, over a 32 s window:
	// 96 s of reconciling is 3.0 reconciles in progress at a time.
	lines := reconcileLatencyLine(s, 32*time.Second)
	g.Expect(lines).To(HaveLen(1))
	g.Expect(lines[0]).To(ContainSubstring("inplaceset 800, 120.0 ms each on average after 50.0 ms in its work queue, 3.0 in progress at a time"))
	g.Expect(reconcileCell(s, "inplaceset")).To(Equal("800 (120.0 ms, queued 50.0 ms)"))

	// A manager that exports no durations (or ran nothing) gets no line,
	// and a controller that ran nothing only its count.
	g.Expect(reconcileLatencyLine(clientStats{Reconciles: counts[string]{"inplaceset": 5}}, time.Second)).To(BeEmpty())
	g.Expect(reconcileCell(s, "cafedeployment")).To(Equal("0"))
}
