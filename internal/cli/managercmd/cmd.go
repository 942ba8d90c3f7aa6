// Package managercmd implements `cafe manager`: CAFE's controllers, as run
// by the Deployment in config/manager.
package managercmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/manager"
)

type options struct {
	manager.Options
	Kubeconfig string
	Zap        zap.Options
}

// NewCmd returns `cafe manager`.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run CAFE's controllers (in a cluster, or against --kubeconfig)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&o.Zap), zap.WriteTo(streams.ErrOut))
			ctrl.SetLogger(log)
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			mgr, err := manager.New(cfg, o.Options)
			if err != nil {
				return err
			}
			log.Info("Starting CAFE manager")
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig to use (default: in-cluster, then $KUBECONFIG)")
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", "0", "Prometheus metrics address, e.g. :8080 (0 disables)")
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "health probe address")
	f.BoolVar(&o.LeaderElection, "leader-elect", false, "elect a leader so only one replica reconciles")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: the pod's namespace)")
	return cmd
}

func (o *options) restConfig() (*rest.Config, error) {
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig: %w", err)
		}
		return cfg, nil
	}
	return ctrl.GetConfig()
}
