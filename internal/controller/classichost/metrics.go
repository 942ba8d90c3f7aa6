package classichost

import (
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// hostReady is 1 for a host whose Ready condition is True, 0 otherwise,
// served on the manager's metrics endpoint.
var hostReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "cafe_classic_host_ready",
	Help: "1 while the classic host's agent heartbeats and is ready, 0 otherwise.",
}, []string{"host", "zone"})

func init() {
	metrics.Registry.MustRegister(hostReady)
}

func recordReady(host *cafev1alpha1.ClassicHost, status metav1.ConditionStatus) {
	v := 0.0
	if status == metav1.ConditionTrue {
		v = 1
	}
	hostReady.WithLabelValues(host.Name, host.Spec.Zone).Set(v)
}
