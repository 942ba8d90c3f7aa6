package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/devenv"
)

var errMissingBinDir = errors.New("no CAFE source tree above the working directory: pass --bin-dir with prebuilt binaries or --source-dir")

// ReadyPrefix starts the one line `cafe dev up` prints when everything is up.
const ReadyPrefix = "CAFE is ready:"

type upOptions struct {
	paths
	Nodes     int
	Zones     []string
	Cells     []string
	KeepState bool
	ClientQPS int
	NoCAFE    bool
	Traffic   bool
	Directory bool
	// ClassicHosts is how many classic hosts (agents as processes) to run.
	ClassicHosts int

	streams genericiooptions.IOStreams
}

func newUpCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &upOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes and CAFE on loopback",
		Long: `Start a real local Kubernetes control plane: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler built from their Go modules (once,
cached in bin/), with kwok simulating the kubelets of nodes spread over
zones (label topology.kubernetes.io/zone) and optionally cells (cafe.io/cell).
CAFE's CRDs and RBAC are installed and its controllers run in this process.

Ctrl-C stops everything; nothing is left running. The state directory keeps
certificates, kubeconfigs and logs; 'cafe dev down' removes it.`,
		Example: `  # 6 nodes over zone-a, zone-b, zone-c
  cafe dev up

  # 9 nodes in two zones, each zone split into cells
  cafe dev up --nodes 9 --zones zone-a,zone-b --cells cell-1,cell-2

  # keep etcd data between runs
  cafe dev up --keep-state

  # 6 classic hosts (VMs running cafe agent) beside the nodes
  cafe dev up --classic-hosts 6`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context())
		},
	}
	o.addFlags(cmd)
	cmd.Flags().IntVar(&o.Nodes, "nodes", 6, "number of simulated nodes, spread round-robin over the zones")
	cmd.Flags().StringSliceVar(&o.Zones, "zones", controlplane.DefaultZones, "zones (node label topology.kubernetes.io/zone)")
	cmd.Flags().StringSliceVar(&o.Cells, "cells", nil, "cells (node label cafe.io/cell), assigned in turn within each zone")
	cmd.Flags().BoolVar(&o.KeepState, "keep-state", false, "reuse the state directory (etcd data included) of an earlier run instead of starting fresh")
	cmd.Flags().IntVar(&o.ClientQPS, "kube-api-qps", controlplane.DefaultClientQPS, "client QPS of kube-controller-manager and kube-scheduler (burst is twice this)")
	cmd.Flags().BoolVar(&o.NoCAFE, "without-cafe", false, "start only Kubernetes: no CAFE CRDs or controllers")
	cmd.Flags().IntVar(&o.ClassicHosts, "classic-hosts", 3, "classic hosts (VMs) to run beside the nodes, each a cafe agent process enrolled with its own credential, round-robin over the zones, each in a network namespace of its own with an address from 198.19.224.0/19 when the control plane runs a pod network (--traffic), else on distinct loopback addresses 127.0.100.N; 0 runs none")
	cmd.Flags().BoolVar(&o.Directory, "directory", true, "run an OpenLDAP directory (Debian's slapd) on loopback, seeded with demo users and groups, and CAFE's login service for them (not with --without-cafe); see docs/iam.md")
	cmd.Flags().BoolVar(&o.Traffic, "traffic", os.Geteuid() == 0, "give the simulated pods answering IPs (a network namespace of its own; needs root), run the pod emulator, a real gateway (Traefik) and Prometheus on loopback; see docs/traffic.md")
	return cmd
}

func (o *upOptions) run(parent context.Context) error {
	if err := o.resolve(); err != nil {
		return err
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating the cafe binary (it runs the pod emulator): %w", err)
	}

	stateDir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	logger := zap.New(zap.WriteTo(&lazyFile{path: filepath.Join(stateDir, "logs", "cafe.log")}), zap.Level(zapcore.InfoLevel))
	ctrl.SetLogger(logger)
	env, err := devenv.Up(ctx, devenv.Options{
		ControlPlane: controlplane.Config{
			StateDir:   stateDir,
			BinDir:     o.BinDir,
			KeepState:  o.KeepState,
			Topology:   controlplane.Topology{Nodes: o.Nodes, Zones: o.Zones, Cells: o.Cells},
			ClientQPS:  o.ClientQPS,
			Traffic:    o.Traffic,
			Directory:  o.Directory && !o.NoCAFE,
			CafeBinary: self,
			Out:        o.streams.ErrOut,
		},
		SourceDir:     o.SourceDir,
		WithoutCAFE:   o.NoCAFE,
		Logger:        logger,
		ClassicHosts:  devenv.ClassicHostPlan(o.classicHosts(), o.Zones),
		DemoAppBinary: filepath.Join(o.BinDir, "demo-app"),
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}
	defer stopWithin(env, o.streams.ErrOut)

	kubeconfig := env.ControlPlane.KubeconfigPath()
	kubectl := filepath.Join(o.BinDir, "kubectl")
	fmt.Fprintf(o.streams.ErrOut, "logs of every component are in %s\n", filepath.Join(stateDir, "logs"))
	for _, h := range env.ClassicHosts {
		where := "a loopback address: without a pod network (--traffic) hosts get no network namespace of their own, and their instances cannot be listed in EndpointSlices"
		if h.Network != nil {
			where = "network namespace " + h.Network.Namespace
		}
		fmt.Fprintf(o.streams.ErrOut, "classic host %s in %s at %s (%s); its agent's kubeconfig is %s\n", h.Name, h.Zone, h.Address, where, h.Kubeconfig)
	}
	if d := env.DemoApp; d != nil {
		fmt.Fprintf(o.streams.ErrOut, "artifact store %s serves the demo app's packages for classic instances:", d.BaseURL)
		for _, p := range d.Packages {
			fmt.Fprintf(o.streams.ErrOut, " %s (sha256 %s)", filepath.Base(p.File), p.SHA256)
		}
		fmt.Fprintln(o.streams.ErrOut)
	}
	traffic := ""
	if url := env.ControlPlane.GatewayURL(); url != "" {
		traffic = fmt.Sprintf("; gateway %s (Traefik API %s)", url, env.ControlPlane.GatewayAdminURL())
	}
	if url := env.ControlPlane.PrometheusURL(); url != "" {
		traffic += "; Prometheus " + url
	}
	fmt.Fprintf(o.streams.Out, "%s kubeconfig %s%s; try: %s --kubeconfig %s get nodes -L %s\n",
		ReadyPrefix, kubeconfig, traffic, kubectl, kubeconfig, strings.Join([]string{controlplane.ZoneLabel, controlplane.CellLabel}, ","))

	if err := env.Wait(ctx); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.ErrOut, "stopping (at most %s for CAFE's controllers; Ctrl-C again stops at once)\n", devenv.ManagerShutdownTimeout)
	return nil
}

// classicHosts is how many classic hosts to run: none without CAFE.
func (o *upOptions) classicHosts() int {
	if o.NoCAFE {
		return 0
	}
	return o.ClassicHosts
}

// stopWithin stops env, and stops waiting for it on a second Ctrl-C or
// SIGTERM: the process then exits, and the kernel kills the control-plane
// children (they run with a parent-death signal), so nothing is left.
func stopWithin(env *devenv.Env, out io.Writer) {
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.Stop()
	}()
	select {
	case <-done:
	case <-again:
		fmt.Fprintln(out, "stopping at once")
	}
}

// lazyFile opens path for appending on first write, so the manager's log
// lands in the state directory Up prepares (and may first wipe).
type lazyFile struct {
	path string
	once sync.Once
	f    *os.File
	err  error
}

func (l *lazyFile) Write(b []byte) (int, error) {
	l.once.Do(func() {
		l.f, l.err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	})
	if l.err != nil {
		return 0, l.err
	}
	return l.f.Write(b)
}
