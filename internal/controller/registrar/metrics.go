package registrar

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	registrationsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cafe_registry_registration_changes_total",
		Help: "Registrations CAFE's registrar wrote or deleted in the service registry, per Service.",
	}, []string{"namespace", "service"})
	registrationsHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cafe_registry_registrations",
		Help: "Registrations the service registry holds for a Service after the registrar's last write.",
	}, []string{"namespace", "service"})
)

func init() {
	metrics.Registry.MustRegister(registrationsWritten, registrationsHeld)
}
