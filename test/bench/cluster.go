package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/controlplane/kwokstages"
	"github.com/cafe-io/cafe/internal/devenv"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework/managerproc"
)

// cluster is the one local control plane of a benchmark run, with CAFE
// installed and its controllers running as a separate process.
type cluster struct {
	cp     *controlplane.ControlPlane
	binDir string
	out    io.Writer
	clock  cpuClock

	admin  *rest.Config
	client client.WithWatch
	// apiHTTP talks to the apiserver as the admin; componentHTTP presents
	// the admin's certificate to kube-controller-manager and kube-scheduler,
	// whose self-signed serving certificates it does not verify.
	apiHTTP       *http.Client
	componentHTTP *http.Client

	manager *managerProcess
	// kruise is OpenKruise's kruise-manager, started only when the CloneSet
	// scenario runs (nil otherwise).
	kruise *managerproc.Process
	// managerPprofAddr is cafe manager's --pprof-bind-address ("" if none).
	managerPprofAddr string
}

// clusterOptions say what to start.
type clusterOptions struct {
	RepoRoot string
	StateDir string
	Nodes    int
	Zones    []string
	// ManagerArgs are appended to cafe manager's command line.
	ManagerArgs []string
	Out         io.Writer
	// Profiling serves /debug/pprof on the apiserver and controller-manager.
	Profiling bool
	// PodDelays simulate kubelet latencies.
	PodDelays kwokstages.Delays
	// Traffic starts the pod network, the gateway (Traefik) and the pod
	// emulator with the control plane, and runs cafe manager with the
	// gateway traffic provider on (--gateway-api-url). Needs root.
	Traffic bool
}

// startCluster builds the Kubernetes binaries if needed, starts a control
// plane on a fresh state directory (so etcd starts empty), registers the
// simulated nodes, installs CAFE's CRDs and RBAC and starts cafe manager.
// On error nothing is left running.
func startCluster(ctx context.Context, o clusterOptions) (_ *cluster, err error) {
	binDir := filepath.Join(o.RepoRoot, "bin")
	if _, err := os.Stat(filepath.Join(binDir, "cafe")); err != nil {
		return nil, fmt.Errorf("bin/cafe is missing; run `make build tools` first: %w", err)
	}
	if err := controlplane.EnsureBinaries(ctx, controlplane.BuildOptions{RepoRoot: o.RepoRoot, BinDir: binDir, Out: o.Out}); err != nil {
		return nil, fmt.Errorf("building the control-plane binaries: %w", err)
	}
	cfg := controlplane.Config{
		StateDir:  o.StateDir,
		BinDir:    binDir,
		Topology:  controlplane.Topology{Nodes: o.Nodes, Zones: o.Zones},
		Profiling: o.Profiling,
		PodDelays: o.PodDelays,
		Out:       o.Out,
	}
	if o.Traffic {
		cfg.Traffic, cfg.CafeBinary = true, filepath.Join(binDir, "cafe")
	}
	cp, err := controlplane.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	c := &cluster{cp: cp, binDir: binDir, out: o.Out, clock: newCPUClock(ctx)}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := c.connect(); err != nil {
		return nil, err
	}
	fmt.Fprintln(o.Out, "installing CAFE CRDs and RBAC")
	if err := install.CAFE(ctx, c.admin); err != nil {
		return nil, fmt.Errorf("installing CAFE: %w", err)
	}
	fmt.Fprintln(o.Out, "starting cafe manager")
	managerArgs := slices.Clone(o.ManagerArgs)
	if o.Traffic {
		managerArgs = append(managerArgs, "--gateway-api-url="+cp.GatewayAdminURL())
	}
	// CAFE runs as an install runs it, with its admission webhooks: in the
	// native modes they are what keeps the ReplicaSet controller from
	// deleting a pod still being drained (it ranks not-ready pods first,
	// before deletion cost), and their cost is part of CAFE's.
	webhookArgs, webhookURL, err := c.installWebhooks(ctx, cp.StateDir())
	if err != nil {
		return nil, err
	}
	managerArgs = append(managerArgs, webhookArgs...)
	memoryArgs, err := installedMemoryArgs(o.RepoRoot, managerArgs)
	if err != nil {
		return nil, err
	}
	managerArgs = append(managerArgs, memoryArgs...)
	for _, a := range managerArgs {
		if addr, ok := strings.CutPrefix(a, "--pprof-bind-address="); ok {
			c.managerPprofAddr = addr
		}
	}
	if c.manager, err = startManager(ctx, cp, binDir, managerArgs); err != nil {
		return nil, err
	}
	if err := devenv.WaitWebhookServer(ctx, webhookURL, c.manager.exited); err != nil {
		return nil, err
	}
	return c, nil
}

// installWebhooks points CAFE's webhook configurations at a free loopback
// port and returns the manager arguments that serve them there.
func (c *cluster) installWebhooks(ctx context.Context, stateDir string) ([]string, string, error) {
	ports, err := controlplane.FreePorts(1)
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	if err := devenv.InstallWebhooks(ctx, c.admin, url); err != nil {
		return nil, "", fmt.Errorf("installing CAFE's webhook configurations: %w", err)
	}
	return []string{fmt.Sprintf("--webhook-port=%d", ports[0]), "--webhook-host=127.0.0.1", "--webhook-cert-dir=" + filepath.Join(stateDir, "webhook-certs")}, url, nil
}

// connect builds the admin clients.
func (c *cluster) connect() error {
	admin, err := c.cp.AdminRESTConfig()
	if err != nil {
		return fmt.Errorf("loading the admin kubeconfig: %w", err)
	}
	// The benchmark's own requests are few; keep them off any client limit.
	admin.QPS, admin.Burst = -1, 0
	c.admin = admin
	if c.client, err = client.NewWithWatch(admin, client.Options{Scheme: scheme.New()}); err != nil {
		return fmt.Errorf("building the admin client: %w", err)
	}
	if c.apiHTTP, err = rest.HTTPClientFor(admin); err != nil {
		return fmt.Errorf("building the apiserver HTTP client: %w", err)
	}
	insecure := rest.CopyConfig(admin)
	insecure.TLSClientConfig = rest.TLSClientConfig{Insecure: true, CertData: admin.CertData, KeyData: admin.KeyData, CertFile: admin.CertFile, KeyFile: admin.KeyFile}
	if c.componentHTTP, err = rest.HTTPClientFor(insecure); err != nil {
		return fmt.Errorf("building the component HTTP client: %w", err)
	}
	c.apiHTTP.Timeout, c.componentHTTP.Timeout = time.Minute, 30*time.Second
	return nil
}

// stop stops the managers, then the control plane. Safe to call twice.
func (c *cluster) stop() {
	if c.manager != nil {
		c.manager.stop()
	}
	if c.kruise != nil {
		c.kruise.Stop()
	}
	c.cp.Stop()
}

// watchFailures returns a context cancelled, with the reason, when a
// control-plane child or the manager exits, so no wait hangs on a dead
// component until its timeout.
func (c *cluster) watchFailures(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	m := c.manager
	// A nil channel never fires: no peer, nothing to watch.
	var peerExited <-chan struct{}
	if c.kruise != nil {
		peerExited = c.kruise.Exited()
	}
	go func() {
		select {
		case err := <-c.cp.Failed():
			cancel(fmt.Errorf("control plane: %w", err))
		case <-m.exited:
			cancel(m.exitError())
		case <-peerExited:
			cancel(c.kruise.ExitError())
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// cpuSeconds reads the CPU time of every control-plane child (named after
// its binary), of cafe manager ("cafe"), of this process ("bench") and of
// the whole machine (machineBusy).
func (c *cluster) cpuSeconds() (counts[string], error) {
	out := counts[string]{}
	for _, pid := range c.cp.PIDs() {
		name, err := processName(pid)
		if err != nil {
			return nil, err
		}
		if out[name], err = c.clock.cpuSeconds(pid); err != nil {
			return nil, err
		}
	}
	var err error
	if out[cafeProcess], err = c.clock.cpuSeconds(c.manager.pid()); err != nil {
		return nil, err
	}
	if c.kruise != nil {
		if out[kruiseProcess], err = c.clock.cpuSeconds(c.kruise.Pid()); err != nil {
			return nil, err
		}
	}
	if out[benchProcess], err = c.clock.cpuSeconds(os.Getpid()); err != nil {
		return nil, err
	}
	if out[machineBusy], err = c.clock.machineBusySeconds(); err != nil {
		return nil, err
	}
	return out, nil
}

// Names under which cpuSeconds reports the processes that are not
// control-plane children.
const (
	cafeProcess  = "cafe"
	benchProcess = "bench"
	// kruiseProcess is the peer controller (the CloneSet scenario).
	kruiseProcess = "kruise-manager"
	// machineBusy is not a process: it is every CPU's non-idle time, so
	// that what other processes on the machine used can be told apart.
	machineBusy = "machine"
)

// componentMetricsURLs are the /metrics endpoints of the clients whose
// own write counts are scraped, by component.
func (c *cluster) componentMetricsURLs() map[string]string {
	p := c.cp.Ports()
	urls := map[string]string{
		cafeProcess:               c.manager.metricsURL,
		"kube-controller-manager": "https://127.0.0.1:" + strconv.Itoa(p.ControllerManager) + "/metrics",
		"kube-scheduler":          "https://127.0.0.1:" + strconv.Itoa(p.Scheduler) + "/metrics",
		"kwok":                    "http://127.0.0.1:" + strconv.Itoa(p.Kwok) + "/metrics",
	}
	if c.kruise != nil {
		urls[kruiseProcess] = c.kruise.MetricsURL()
	}
	return urls
}
