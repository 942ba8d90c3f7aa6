package trafficprovider

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a Routes question (the result label of confirmationsTotal).
const (
	resultReleased = "released"
	resultRouted   = "routed"
	resultError    = "error"
)

// Metrics of the traffic providers, served with controller-runtime's on
// the manager's metrics endpoint. Every series has the provider's name.
var (
	confirmationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cafe_traffic_provider_confirmations_total",
		Help: "Questions to a traffic system whether it still routes to a pod whose finalizer the provider holds, by answer: released (no longer routed, finalizer removed), routed (finalizer kept), error (no answer, finalizer kept).",
	}, []string{"provider", "result"})
	podsWaiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cafe_traffic_provider_pods_waiting",
		Help: "Pods whose finalizer the provider keeps because its traffic system still routes to them (or does not answer) although they are to be released.",
	}, []string{"provider"})
	releaseSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cafe_traffic_provider_release_seconds",
		Help:    "Time from the first reconcile that found a pod to be released until its finalizer was removed.",
		Buckets: releaseSecondsBuckets,
	}, []string{"provider"})
)

var releaseSecondsBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// The same for classic instances: series of their own, so that the pods'
// keep their meaning.
var (
	instanceConfirmationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cafe_traffic_provider_instance_confirmations_total",
		Help: "Questions to a traffic system whether it still routes to a classic instance whose finalizer the provider holds, by answer: released (no longer routed, finalizer removed), routed (finalizer kept), error (no answer, finalizer kept).",
	}, []string{"provider", "result"})
	instancesWaiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cafe_traffic_provider_instances_waiting",
		Help: "Classic instances whose finalizer the provider keeps because its traffic system still routes to them (or does not answer) although they are to be released.",
	}, []string{"provider"})
	instanceReleaseSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cafe_traffic_provider_instance_release_seconds",
		Help:    "Time from the first reconcile that found a classic instance to be released until its finalizer was removed.",
		Buckets: releaseSecondsBuckets,
	}, []string{"provider"})
)

// kindMetrics are the series one kind of guarded object counts in.
type kindMetrics struct {
	confirmations *prometheus.CounterVec
	waiting       *prometheus.GaugeVec
	release       *prometheus.HistogramVec
}

var (
	podMetrics      = kindMetrics{confirmationsTotal, podsWaiting, releaseSeconds}
	instanceMetrics = kindMetrics{instanceConfirmationsTotal, instancesWaiting, instanceReleaseSeconds}
)

func init() {
	metrics.Registry.MustRegister(confirmationsTotal, podsWaiting, releaseSeconds,
		instanceConfirmationsTotal, instancesWaiting, instanceReleaseSeconds)
}
