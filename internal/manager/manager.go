// Package manager builds CAFE's controller manager: one controller-runtime
// manager with every CAFE controller registered. `cafe manager` (in a
// cluster), `cafe dev up` (in-process against the local control plane) and the
// integration tests all build it here, from the same Options, so what the
// tests exercise is what runs.
package manager

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment"
	"github.com/cafe-io/cafe/internal/controller/inplaceset"
)

// Options configure the manager. The zero value is valid for tests: no
// metrics or probe listener, no leader election.
type Options struct {
	// MetricsAddr is the Prometheus metrics listen address; "0" or "" disables it.
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz; "" disables it.
	ProbeAddr string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the leader Lease.
	LeaderElectionNamespace string
}

// LeaderElectionID names the Lease replicas of the manager compete for.
const LeaderElectionID = "cafe-controller-manager.cafe.io"

// Scheme returns the scheme with the Kubernetes built-in kinds and CAFE's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(cafev1alpha1.AddToScheme(s))
	return s
}

// New builds the manager and registers every CAFE controller with it.
func New(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	metricsAddr := opts.MetricsAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Release the lease on shutdown so a rolling update of the manager
		// does not wait a lease duration before the new leader acts.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if opts.ProbeAddr != "" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, fmt.Errorf("adding health check: %w", err)
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, fmt.Errorf("adding ready check: %w", err)
		}
	}
	if err := setupControllers(context.Background(), mgr); err != nil {
		return nil, err
	}
	return mgr, nil
}

// setupControllers registers every controller. Each controller package
// exposes a Reconciler with SetupWithManager.
func setupControllers(ctx context.Context, mgr ctrl.Manager) error {
	ips := &inplaceset.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("inplaceset")}
	if err := ips.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the InPlaceSet controller: %w", err)
	}
	cd := &cafedeployment.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("cafedeployment")}
	if err := cd.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CafeDeployment controller: %w", err)
	}
	return nil
}
