package dev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/podemu"
	"github.com/cafe-io/cafe/internal/podnet"
)

type emulateOptions struct {
	Kubeconfig     string
	StateDir       string
	PodCIDR        string
	SlowLatency    time.Duration
	MaxGracePeriod time.Duration
	HealthAddr     string

	streams genericiooptions.IOStreams
}

func newEmulateCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &emulateOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "emulate-pods",
		Short: "EMULATION: answer HTTP on the simulated pods' IPs and ports, as their containers would",
		Long: `Emulate the containers of the local control plane's simulated pods. kwok
gives pods an IP and a running status, but no process stands behind them:
this command listens, inside the control plane's pod network namespace, on
each running pod's IP and declared TCP container ports, and answers HTTP
like a small app: 200 with the pod, container, image and version (the image
tag) in JSON and in the X-Cafe-Pod and X-Cafe-Version headers; /healthz "ok".
A tag ending in -fail answers 500, one ending in -slow answers late.

It follows the pods as the API server reports them: a container listens
while it runs its spec's image, and stops gracefully (no new connection,
requests in flight finished) once its pod is terminating, its image changes
in place, it restarts or stops running, or the pod is gone. See
docs/pod-emulator.md.

The pod network must exist already (the control plane creates and deletes
it);
this command only opens listeners in it, and never outside --pod-cidr.
SIGTERM or Ctrl-C stops every container gracefully, then the command.`,
		Example: `  # beside a local control plane in .cafe/dev whose pod CIDR is 198.18.0.0/19
  cafe dev emulate-pods --kubeconfig .cafe/dev/kubeconfig --pod-cidr 198.18.0.0/19 \
    --health-addr 127.0.0.1:9440`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig of the local control plane")
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir, "state directory of the control plane (names its pod network)")
	f.StringVar(&o.PodCIDR, "pod-cidr", "", "pod CIDR of the control plane, routed into its pod network; nothing outside it is listened on")
	f.DurationVar(&o.SlowLatency, "slow-latency", podemu.DefaultSlowLatency, "how late a container of an image tagged *-slow answers")
	f.DurationVar(&o.MaxGracePeriod, "max-grace-period", podemu.DefaultMaxGracePeriod, "longest time a stopped container gets to finish its requests, whatever its pod's grace period")
	f.StringVar(&o.HealthAddr, "health-addr", "", "loopback address (e.g. 127.0.0.1:9440) serving /healthz (200 once the pods are synced) and /status (the endpoints as JSON); empty disables it")
	_ = cmd.MarkFlagRequired("kubeconfig")
	_ = cmd.MarkFlagRequired("pod-cidr")
	return cmd
}

// validate checks the flags before anything is opened: the pod CIDR is an
// IPv4 range off loopback (as podnet requires), and the health address is
// a loopback one (the network rule: CAFE's own endpoints stay on loopback).
func (o *emulateOptions) validate() (netip.Prefix, error) {
	cidr, err := netip.ParsePrefix(o.PodCIDR)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("--pod-cidr: %w", err)
	}
	if !cidr.Addr().Is4() || cidr.Addr().IsLoopback() {
		return netip.Prefix{}, fmt.Errorf("--pod-cidr %s: an IPv4 range outside 127.0.0.0/8 is needed", cidr)
	}
	if o.HealthAddr != "" {
		addr, err := netip.ParseAddrPort(o.HealthAddr)
		if err != nil || !addr.Addr().IsLoopback() {
			return netip.Prefix{}, fmt.Errorf("--health-addr %q: a loopback IP and port are needed, e.g. 127.0.0.1:9440", o.HealthAddr)
		}
	}
	if o.SlowLatency < 0 || o.MaxGracePeriod < 0 {
		return netip.Prefix{}, errors.New("--slow-latency and --max-grace-period cannot be negative")
	}
	return cidr.Masked(), nil
}

func (o *emulateOptions) run(parent context.Context) error {
	cidr, err := o.validate()
	if err != nil {
		return err
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops the containers gracefully; a second one, no
	// longer caught, ends the process at once.
	context.AfterFunc(ctx, stop)

	// The same absolute state directory as the control plane's names the
	// same network. It is the control plane's to create and delete: without it
	// there is nowhere to listen.
	stateDir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	network := podnet.For(stateDir, cidr)
	if _, err := os.Stat(filepath.Join("/run/netns", network.Namespace)); err != nil {
		return fmt.Errorf("pod network %s of the control plane in %s is missing (the control plane creates it): %w", network.Namespace, stateDir, err)
	}
	cfg, err := controlplane.RESTConfigFromKubeconfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	log := zap.New(zap.WriteTo(o.streams.ErrOut), zap.Level(zapcore.InfoLevel)).WithName("emulate-pods")
	emulator, err := podemu.New(client, podemu.Options{
		PodCIDR:        network.CIDR,
		Listen:         network.Listen,
		SlowLatency:    o.SlowLatency,
		MaxGracePeriod: o.MaxGracePeriod,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	if o.HealthAddr != "" {
		l, err := net.Listen("tcp", o.HealthAddr)
		if err != nil {
			return fmt.Errorf("--health-addr: %w", err)
		}
		srv := &http.Server{Handler: emulator.StatusHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		log.Info("Serving /healthz and /status", "address", l.Addr().String())
	}
	log.Info("Starting the pod emulator (EMULATION: no container runs)", "podNetwork", network.Namespace, "podCIDR", network.CIDR)
	if err := emulator.Run(ctx); err != nil {
		return err
	}
	log.Info("Stopped every emulated container")
	return nil
}
