package lossless

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// sliceAPIReads counts the EndpointSlices the drain check read from the
	// API server because CAFE's slice cache was behind the pod it judged
	// (Slices). A steady rise means the slice watch lags the pod watch.
	sliceAPIReads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cafe_lossless_endpointslice_api_reads_total",
		Help: "EndpointSlices read from the API server by the drain check because the slice cache was older than the pod it judged.",
	})
	// watchedNamespaces is how many namespaces' EndpointSlices CAFE
	// watches: those where it manages pods (Slices).
	watchedNamespaces = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cafe_lossless_endpointslice_watched_namespaces",
		Help: "Namespaces whose EndpointSlices CAFE watches for the drain check: those where it manages pods, and for a while after the last one went.",
	})
)

func init() {
	metrics.Registry.MustRegister(sliceAPIReads, watchedNamespaces)
}
