package releaseorder

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Metrics of release orders, served on the manager's metrics endpoint.
// They are measurements for dashboards; the record is the orders
// themselves (`cafe release stats` computes from them).
var (
	ordersFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cafe_release_orders_finished_total",
		Help: "Release orders that finished, by outcome (Succeeded, Failed, RolledBack, Cancelled).",
	}, []string{"namespace", "outcome"})
	orderDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cafe_release_order_duration_seconds",
		Help:    "Time from the start of a release order to its end, by outcome.",
		Buckets: []float64{30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
	}, []string{"namespace", "outcome"})
	rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cafe_release_order_app_rollbacks_total",
		Help: "Apps rolled back by release orders.",
	}, []string{"namespace", "app"})
	approvalWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cafe_release_order_approval_wait_seconds",
		Help:    "Time from the creation of a release order to its last required approval.",
		Buckets: []float64{60, 300, 900, 1800, 3600, 14400, 43200, 86400, 259200},
	}, []string{"namespace"})
	confirmWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cafe_release_order_confirm_wait_seconds",
		Help:    "Time a release waited for a person to confirm its next group.",
		Buckets: []float64{5, 15, 30, 60, 300, 900, 1800, 3600},
	}, []string{"namespace", "app"})
)

func init() {
	metrics.Registry.MustRegister(ordersFinished, orderDuration, rollbacks, approvalWait, confirmWait)
}

// observe records one observation of a written status.
func observe(o *cafev1alpha1.ReleaseOrder, obs Observation) {
	ns := o.Namespace
	switch obs.Kind {
	case "finished":
		ordersFinished.WithLabelValues(ns, string(obs.Outcome)).Inc()
		if obs.Duration > 0 {
			orderDuration.WithLabelValues(ns, string(obs.Outcome)).Observe(obs.Duration.Seconds())
		}
	case "approved":
		approvalWait.WithLabelValues(ns).Observe(obs.Duration.Seconds())
	case "confirmed":
		confirmWait.WithLabelValues(ns, obs.App).Observe(obs.Duration.Seconds())
	case "rollback":
		rollbacks.WithLabelValues(ns, obs.App).Inc()
	}
}
