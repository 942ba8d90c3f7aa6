package nodelifecycle

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Metrics of the node lifecycle controller, served with controller-runtime's
// on the manager's metrics endpoint.
var (
	nodesByVerdict = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cafe_nodelifecycle_nodes",
		Help: "Nodes by CAFE verdict (Healthy, Suspect, Failed).",
	}, []string{"verdict"})
	hostsByVerdict = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cafe_nodelifecycle_hosts",
		Help: "Classic hosts by CAFE verdict (Healthy, Suspect, Failed).",
	}, []string{"verdict"})
	zoneGuarded = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cafe_nodelifecycle_zone_guarded",
		Help: "1 while the zone guard holds migrations in the zone.",
	}, []string{"zone"})
	migrationsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cafe_nodelifecycle_migrations_total",
		Help: "Pod migrations started (pods annotated cafe.io/migration-requested).",
	})
	instanceMigrationsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cafe_nodelifecycle_instance_migrations_total",
		Help: "Classic instance migrations started (ClassicSet instances of Failed hosts annotated cafe.io/migration-requested).",
	})
	verdictSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cafe_nodelifecycle_time_to_verdict_seconds",
		Help:    "Time from a node's or classic host's first bad signal to the verdict.",
		Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 300, 600},
	}, []string{"verdict"})
	migratedSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cafe_nodelifecycle_time_to_migrated_seconds",
		Help:    "Time from a Failed node's (classic host's) first bad signal until none of its InPlaceSet pods (ClassicSet instances) is left running on it.",
		Buckets: []float64{10, 20, 30, 45, 60, 90, 120, 180, 300, 600},
	})
)

func init() {
	metrics.Registry.MustRegister(nodesByVerdict, hostsByVerdict, zoneGuarded, migrationsTotal, instanceMigrationsTotal, verdictSeconds, migratedSeconds)
}

// recordMetrics sets the gauges of the nodes and hosts by verdict and of
// the guarded zones.
func (r *Reconciler) recordMetrics(states []nodeState, zones []cafev1alpha1.ZoneHealth) {
	nodes, hosts := map[cafev1alpha1.NodeVerdict]float64{}, map[cafev1alpha1.NodeVerdict]float64{}
	for _, s := range states {
		if s.Host != nil {
			hosts[s.Judgement.Verdict]++
		} else {
			nodes[s.Judgement.Verdict]++
		}
	}
	for _, v := range []cafev1alpha1.NodeVerdict{cafev1alpha1.NodeVerdictHealthy, cafev1alpha1.NodeVerdictSuspect, cafev1alpha1.NodeVerdictFailed} {
		nodesByVerdict.WithLabelValues(string(v)).Set(nodes[v])
		hostsByVerdict.WithLabelValues(string(v)).Set(hosts[v])
	}
	zoneGuarded.Reset()
	for _, z := range zones {
		v := 0.0
		if z.Guarded {
			v = 1
		}
		zoneGuarded.WithLabelValues(z.Name).Set(v)
	}
}
