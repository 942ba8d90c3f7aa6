// Package agentcmd implements `cafe agent`, run on a classic host with the
// host's credential (see `cafe host enroll`).
package agentcmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/agent"
	"github.com/cafe-io/cafe/internal/version"
)

// NewCmd returns `cafe agent`.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := agent.Options{Version: version.String()}
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent of a classic host: register it, heartbeat, run its instances",
		Long: `Run on a classic (virtual or physical) host, with the kubeconfig that
'cafe host enroll' wrote for it. The agent registers the host as a
ClassicHost, reports itself ready and renews the host's Lease in
cafe-host-lease until stopped. It runs the ClassicInstances placed on the
host: fetches each package, checks its SHA-256, starts its command with
CAFE_LISTEN=<address>:<port>, health-checks it and reports in the
instance's status. Stopping the agent leaves the instances running; the
next agent adopts them. Its credential lets it write only this host and the
status of its instances.`,
		Example: `  cafe agent --kubeconfig /etc/cafe/host.kubeconfig --host vm-a-1 --zone zone-a --address 10.0.0.11`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.WriteTo(streams.ErrOut)))
			if kubeconfig == "" {
				return fmt.Errorf("--kubeconfig: the host's kubeconfig (from 'cafe host enroll') is required")
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("loading --kubeconfig: %w", err)
			}
			a := &agent.Agent{Options: o, Config: cfg}
			return a.Run(ctrl.LoggerInto(ctrl.SetupSignalHandler(), ctrl.Log.WithName("agent")))
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "the host's kubeconfig, written by 'cafe host enroll'")
	f.StringVar(&o.Host, "host", "", "the host's name (its ClassicHost; the credential must be this host's)")
	f.StringVar(&o.Zone, "zone", "", "the zone the host is in")
	f.StringVar(&o.Cell, "cell", "", "the cell the host belongs to, if any")
	f.StringVar(&o.Address, "address", "", "the IP address the host's instances serve on")
	f.Int32Var(&o.Capacity, "capacity", 0, "most instances the host runs (0: the API's default)")
	f.DurationVar(&o.LeaseDuration, "lease-duration", agent.DefaultLeaseDuration, "the heartbeat Lease's duration (whole seconds)")
	f.DurationVar(&o.RenewInterval, "renew-interval", agent.DefaultRenewInterval, "how often the Lease is renewed")
	f.StringVar(&o.WorkDir, "work-dir", "/var/lib/cafe-agent", "where packages are unpacked and instances keep their process records, working directories and output")
	f.DurationVar(&o.HealthPeriod, "health-period", agent.DefaultHealthPeriod, "how often a running instance's health check is called")
	f.IntVar(&o.HealthPort, "health-port", agent.DefaultHealthPort, "the port of the agent's health endpoint on --address, which CAFE probes to tell the host reachable (0: any free port)")
	f.StringVar(&o.NetNS, "netns", "", "a network namespace (under /run/netns) holding --address to start the instances in (the local control plane's emulated hosts; empty on a real host)")
	f.StringVar(&o.Registry, "registry", "", "the shared service registry's client URL, given to every instance as CAFE_REGISTRY (relayed on --address when --netns is set)")
	f.IntVar(&o.RegistryRelayPort, "registry-relay-port", agent.DefaultRegistryRelayPort, "with --registry and --netns: the port on --address where the agent relays the registry to the instances (0: any free port)")
	f.DurationVar(&o.StopGrace, "stop-grace", agent.DefaultStopGrace, "how long a stopped instance's process has after SIGTERM before SIGKILL")
	return cmd
}
