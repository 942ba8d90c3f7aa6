package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cafe-io/cafe/internal/controlplane/kwokstages"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/token"
)

// Config describes one local control plane.
type Config struct {
	// StateDir holds certificates, etcd data, kubeconfigs and logs.
	StateDir string
	// BinDir holds the binaries (see EnsureBinaries).
	BinDir string
	// KeepState reuses a state directory left by an earlier run (etcd data
	// included) instead of wiping it.
	KeepState bool
	// Topology of the simulated nodes registered at start; Nodes 0 registers none.
	Topology Topology
	// ClientQPS is the client QPS of kube-controller-manager and kube-scheduler.
	ClientQPS int
	// WithoutKwok starts only etcd and kube-apiserver (what envtest needs).
	WithoutKwok bool
	// Traffic gives the simulated pods IPs that answer: a pod network (a
	// network namespace the pod CIDR is routed into; needs root), the pod
	// emulator (cafe dev emulate-pods, run from CafeBinary) and a real
	// Gateway API gateway (Traefik) on loopback. See docs/traffic.md.
	Traffic bool
	// Directory runs an OpenLDAP directory (Debian's slapd) on loopback,
	// seeded with the demo users and groups (DemoDirectory); see
	// docs/iam.md.
	Directory bool
	// CafeBinary is the cafe executable the pod emulator runs from.
	CafeBinary string
	// PodDelays simulate kubelet latencies (kwok stage delays); zero: none.
	PodDelays kwokstages.Delays
	// Profiling serves /debug/pprof on kube-apiserver and
	// kube-controller-manager (off otherwise, as in a hardened cluster), for
	// the benchmark's -profile-dir.
	Profiling bool
	// Out receives progress lines; nil discards them.
	Out io.Writer
}

// DefaultClientQPS is the controller-manager and scheduler client QPS: at the
// upstream default (20) they halve release speed on a 2-core machine.
const DefaultClientQPS = 100

// ControlPlane is a running local control plane.
type ControlPlane struct {
	cfg    Config
	layout layout
	pki    PKI
	ports  Ports
	// network is the pod network (Traffic only).
	network *podnet.Network

	mu    sync.Mutex
	procs []*process
	// restartMu serializes Restart and AddAPIServer.
	restartMu sync.Mutex
	// apiServers counts the kube-apiservers AddAPIServer started.
	apiServers int

	failed   chan error
	stopOnce sync.Once
	done     chan struct{}
}

// state is what a running control plane records in its state directory so a
// later run can tell a live instance from a crashed one.
type state struct {
	PID int `json:"pid"`
	// PIDStart is when PID started (clock ticks since boot): a live PID
	// that started at another time is a recycled one, someone else's.
	PIDStart uint64   `json:"pidStart,omitempty"`
	Children []int    `json:"children"`
	Ports    Ports    `json:"ports"`
	Started  string   `json:"started"`
	Topology Topology `json:"topology"`
	// PodNetwork is the pod network this run created, for `cafe dev down`
	// after a crash.
	PodNetwork *podnet.Network `json:"podNetwork,omitempty"`
}

// ErrStateInUse is returned when another live process owns the state directory.
var ErrStateInUse = errors.New("state directory is in use")

// Start brings the control plane up and returns once the API server is ready
// and, unless WithoutKwok, every requested node is Ready. On error nothing is
// left running.
func Start(ctx context.Context, cfg Config) (_ *ControlPlane, err error) {
	if cfg.ClientQPS == 0 {
		cfg.ClientQPS = DefaultClientQPS
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := cfg.Topology.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("resolving state directory: %w", err)
	}
	cp := &ControlPlane{cfg: cfg, layout: layout{dir: dir}, failed: make(chan error, 1), done: make(chan struct{})}
	if err := cp.prepareStateDir(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if cfg.Traffic && !cfg.WithoutKwok {
		if err := cp.createPodNetwork(ctx); err != nil {
			return nil, err
		}
	}

	// A port can be taken between picking it and the child binding it; retry
	// the whole start with fresh ports rather than fail.
	for attempt := 1; ; attempt++ {
		err = cp.startOnce(ctx)
		if err == nil || attempt == 3 || !isAddressInUse(err) {
			break
		}
		fmt.Fprintf(cfg.Out, "a port was taken while starting (%v); retrying with new ports\n", firstLine(err))
		cp.stopProcesses()
	}
	if err != nil {
		return nil, err
	}
	go cp.watchChildren()
	return cp, nil
}

func (cp *ControlPlane) startOnce(ctx context.Context) error {
	ports, err := pickPorts()
	if err != nil {
		return err
	}
	cp.ports = ports
	l := cp.layout
	server := secureURL(ports.APIServer)
	for _, id := range cp.identities() {
		if err := writeKubeconfig(l.kubeconfig(id), server, cp.pki, id); err != nil {
			return err
		}
	}
	if err := writeKubeconfig(l.adminKubeconfig(), server, cp.pki, AdminIdentity); err != nil {
		return err
	}

	etcdTLS, err := cp.pki.EtcdClientTLS()
	if err != nil {
		return err
	}
	if err := cp.run(ctx, "etcd", etcdArgs(l, ports, cp.pki), func(ctx context.Context) error {
		return waitHTTP(ctx, secureURL(ports.EtcdClient)+"/health", etcdTLS)
	}); err != nil {
		return err
	}
	admin, err := cp.AdminRESTConfig()
	if err != nil {
		return err
	}
	apiArgs := apiServerArgs(l, ports, cp.pki)
	if cp.cfg.Directory {
		// CAFE's token issuer is trusted once CAFE serves its keys: the
		// API server reloads this file when devenv writes the issuer in.
		if err := os.WriteFile(l.authenticationConfig(), token.EmptyAuthenticationConfig(), 0o600); err != nil {
			return err
		}
		apiArgs = append(apiArgs, "--authentication-config="+l.authenticationConfig())
	}
	if err := cp.run(ctx, "kube-apiserver", cp.profiled(apiArgs), func(ctx context.Context) error {
		return waitAPIServerReady(ctx, admin)
	}); err != nil {
		return err
	}
	if cp.cfg.WithoutKwok {
		return cp.writeState()
	}
	if err := cp.run(ctx, "kube-controller-manager", cp.profiled(controllerManagerArgs(l, ports, cp.pki, cp.cfg.ClientQPS, cp.podCIDR())), func(ctx context.Context) error {
		return waitHTTP(ctx, secureURL(ports.ControllerManager)+"/healthz", insecureTLS)
	}); err != nil {
		return err
	}
	if err := cp.run(ctx, "kube-scheduler", schedulerArgs(l, ports), func(ctx context.Context) error {
		return waitHTTP(ctx, secureURL(ports.Scheduler)+"/healthz", insecureTLS)
	}); err != nil {
		return err
	}
	if err := cp.run(ctx, "kwok", kwokArgs(l, ports, cp.podCIDR()), func(ctx context.Context) error {
		return waitHTTP(ctx, url(ports.Kwok)+"/healthz", nil)
	}); err != nil {
		return err
	}
	if cp.network != nil {
		if err := cp.startTraffic(ctx, admin); err != nil {
			return err
		}
	}
	if cp.cfg.Directory {
		if err := cp.startDirectory(ctx); err != nil {
			return err
		}
	}
	if err := cp.writeState(); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	// kwok's volume stages provision PersistentVolumes for this class.
	if err := EnsureStorageClass(ctx, cs); err != nil {
		return err
	}
	if cp.cfg.Topology.Nodes > 0 {
		fmt.Fprintf(cp.cfg.Out, "registering %d simulated nodes over %s\n", cp.cfg.Topology.Nodes, strings.Join(cp.cfg.Topology.Zones, ", "))
		nodes := cp.cfg.Topology.NodeSpecs()
		if err := EnsureNodes(ctx, cs, nodes); err != nil {
			return err
		}
		if err := cp.waitOrFail(ctx, func(ctx context.Context) error { return WaitNodesReady(ctx, cs, NodeNames(nodes)) }); err != nil {
			return fmt.Errorf("waiting for nodes to become Ready: %w", err)
		}
	}
	return nil
}

// run starts one component and waits for its readiness check, failing fast
// (with its log tail) if it exits first.
func (cp *ControlPlane) run(ctx context.Context, name string, args []string, ready func(context.Context) error) error {
	_, err := cp.runBinary(ctx, name, name, args, ready)
	return err
}

// binary is the path of one of the control plane's binaries.
func (cp *ControlPlane) binary(name string) string { return filepath.Join(cp.cfg.BinDir, name) }

// runBinary is run for a component named other than its binary (a second
// kube-apiserver).
func (cp *ControlPlane) runBinary(ctx context.Context, name, binary string, args []string, ready func(context.Context) error) (*process, error) {
	fmt.Fprintf(cp.cfg.Out, "starting %s\n", name)
	p, err := startProcess(name, cp.binary(binary), args, nil, cp.layout.log(name))
	if err != nil {
		return nil, err
	}
	return p, cp.adopt(ctx, p, ready)
}

// RunChild starts binary as a child of the running control plane, for
// parts started after it (classic hosts' agents): its log is
// logs/<name>.log, it stops with the control plane, Restart and Kill
// address it by name, its exit is reported on Failed like a component's,
// and `cafe dev down` finds it. RunChild returns once ready passes.
func (cp *ControlPlane) RunChild(ctx context.Context, name, binary string, args []string, ready func(context.Context) error) error {
	fmt.Fprintf(cp.cfg.Out, "starting %s\n", name)
	p, err := startProcess(name, binary, args, nil, cp.layout.log(name))
	if err != nil {
		return err
	}
	if err := cp.adopt(ctx, p, ready); err != nil {
		return err
	}
	cp.watchChild(p)
	return cp.writeState()
}

// adopt makes p one of the control plane's children and waits for its
// readiness check.
func (cp *ControlPlane) adopt(ctx context.Context, p *process, ready func(context.Context) error) error {
	p.ready = ready
	cp.mu.Lock()
	cp.procs = append(cp.procs, p)
	cp.mu.Unlock()
	if err := cp.waitOrFail(ctx, ready); err != nil {
		return fmt.Errorf("waiting for %s to become ready: %w", p.name, err)
	}
	return nil
}

// waitOrFail runs wait until it succeeds, ctx ends, a minute passes, or a
// child exits (whose error wins, because it says why).
func (cp *ControlPlane) waitOrFail(ctx context.Context, wait func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- wait(ctx) }()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case err := <-result:
			if exit := cp.firstExit(); exit != nil {
				return exit
			}
			return err
		case <-ticker.C:
			if exit := cp.firstExit(); exit != nil {
				cancel()
				return exit
			}
		}
	}
}

func (cp *ControlPlane) firstExit() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, p := range cp.procs {
		if err := p.unexpectedExit(); err != nil {
			return err
		}
	}
	return nil
}

// watchChildren reports the first child that exits while the control plane
// runs, then stops the others.
func (cp *ControlPlane) watchChildren() {
	cp.mu.Lock()
	procs := append([]*process(nil), cp.procs...)
	cp.mu.Unlock()
	for _, p := range procs {
		cp.watchChild(p)
	}
}

// watchChild reports p's exit, unless it was stopped, and then stops the
// others: a control plane missing a component is not one to test against.
func (cp *ControlPlane) watchChild(p *process) {
	go func() {
		select {
		case <-p.exited:
		case <-cp.done:
			return
		}
		if err := p.unexpectedExit(); err != nil {
			select {
			case cp.failed <- err:
			default: // another child's exit was reported first
			}
			cp.Stop()
		}
	}()
}

// Failed delivers the error of a child that exited on its own; the control
// plane has then already stopped the others.
func (cp *ControlPlane) Failed() <-chan error { return cp.failed }

// Stop stops every child, last started first, and removes the state record.
// It is safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		close(cp.done)
		cp.stopProcesses()
		if cp.network != nil {
			podnet.Release(context.Background(), *cp.network)
		}
		_ = os.Remove(cp.layout.stateFile())
	})
}

func (cp *ControlPlane) stopProcesses() {
	cp.mu.Lock()
	procs := cp.procs
	cp.procs = nil
	cp.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(10 * time.Second)
	}
}

// Remove stops the control plane and deletes its state directory.
func (cp *ControlPlane) Remove() error {
	cp.Stop()
	return os.RemoveAll(cp.layout.dir)
}

// KubeconfigPath is the admin kubeconfig (user cafe-admin, group system:masters).
func (cp *ControlPlane) KubeconfigPath() string { return cp.layout.adminKubeconfig() }

// KubeconfigFor returns the kubeconfig of one of the control plane's identities.
func (cp *ControlPlane) KubeconfigFor(id Identity) string { return cp.layout.kubeconfig(id) }

// AdminRESTConfig returns a client configuration for the admin identity.
func (cp *ControlPlane) AdminRESTConfig() (*rest.Config, error) {
	return RESTConfigFromKubeconfig(cp.KubeconfigPath())
}

// CafeRESTConfig returns the configuration CAFE's controllers use: the
// cafe-controller-manager ServiceAccount's identity, bound by config/rbac.
func (cp *ControlPlane) CafeRESTConfig() (*rest.Config, error) {
	return RESTConfigFromKubeconfig(cp.layout.kubeconfig(CafeIdentity))
}

// Ports returns the ports the components listen on.
func (cp *ControlPlane) Ports() Ports { return cp.ports }

// StateDir is the absolute state directory.
func (cp *ControlPlane) StateDir() string { return cp.layout.dir }

// LogPath returns the log file of a component.
func (cp *ControlPlane) LogPath(component string) string { return cp.layout.log(component) }

// EtcdURL is etcd's client URL (TLS; clients need PKI.EtcdClientTLS).
func (cp *ControlPlane) EtcdURL() string { return secureURL(cp.ports.EtcdClient) }

// PKI is the control plane's certificates.
func (cp *ControlPlane) PKI() PKI { return cp.pki }

// APIServerURL is kube-apiserver's URL.
func (cp *ControlPlane) APIServerURL() string { return secureURL(cp.ports.APIServer) }

// PIDs returns the process ids of the running children.
func (cp *ControlPlane) PIDs() []int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	pids := make([]int, 0, len(cp.procs))
	for _, p := range cp.procs {
		pids = append(pids, p.pid())
	}
	return pids
}

func (cp *ControlPlane) identities() []Identity {
	return []Identity{AdminIdentity, ControllerManagerIdentity, SchedulerIdentity, KwokIdentity, CafeIdentity, GatewayIdentity, PodEmulatorIdentity}
}

// prepareStateDir refuses a directory owned by a live run, cleans up after a
// crashed one (killing children it may have left) and writes the PKI and the
// component configuration files.
func (cp *ControlPlane) prepareStateDir() error {
	l := cp.layout
	if prev, err := readState(l.stateFile()); err == nil {
		if prev.ownerAlive() && prev.PID != os.Getpid() {
			return fmt.Errorf("%w: %s belongs to the running process %d; stop it first (or use another --state-dir)", ErrStateInUse, l.dir, prev.PID)
		}
		killStaleChildren(prev, l.dir)
		if prev.PodNetwork != nil {
			podnet.Release(context.Background(), *prev.PodNetwork)
		}
		fmt.Fprintf(cp.cfg.Out, "found state of a run that did not stop cleanly in %s\n", l.dir)
	}
	if !cp.cfg.KeepState {
		if err := os.RemoveAll(l.dir); err != nil {
			return fmt.Errorf("cleaning state directory: %w", err)
		}
	}
	for _, d := range []string{l.dir, l.logs(), filepath.Dir(l.kubeconfig(AdminIdentity)), filepath.Dir(l.kwokConfig())} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	pki, err := GeneratePKI(l.pki(), cp.identities()...)
	if err != nil {
		return err
	}
	cp.pki = pki
	if err := os.WriteFile(l.schedulerConfig(), []byte(schedulerConfig(l.kubeconfig(SchedulerIdentity), cp.cfg.ClientQPS)), 0o600); err != nil {
		return fmt.Errorf("writing scheduler configuration: %w", err)
	}
	stages, err := kwokstages.WithDelays(cp.cfg.PodDelays)
	if err != nil {
		return fmt.Errorf("reading kwok stages: %w", err)
	}
	if err := os.WriteFile(l.kwokConfig(), []byte(kwokConfiguration+"---\n"+stages), 0o600); err != nil {
		return fmt.Errorf("writing kwok configuration: %w", err)
	}
	return nil
}

// kwokConfiguration gives kwok enough parallelism that it is never the
// bottleneck of a 1,000-pod release. kwok applies its defaults only when it
// reads no configuration, so every option it needs is spelled out.
//
// kwok v0.8.0 plays the Stages of this file for whatever resource they name:
// Node and Pod stages drive its node and pod controllers, and any other kind
// (here PersistentVolumeClaim and PersistentVolume) gets a generic stage
// controller that watches that resource cluster-wide. No option enables this.
// enableCRDs must not list Stage: kwok then refuses to start while the file
// holds stages (it would read Stage objects from the API instead).
//
// nodeLeaseParallelism: kwok renews each node's Lease every quarter of its
// duration (10 s), so 1,000 nodes need 100 renewals a second. A worker renews
// one Lease at a time, and on a saturated API server (10,000 pods on 2 cores)
// a renewal took about 350 ms: 4 workers managed 11.6 a second, Leases
// expired, kube-controller-manager marked the nodes and their pods NotReady.
const kwokConfiguration = `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: 16
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 16
  nodeLeaseDurationSeconds: 40
  podsOnNodeSyncParallelism: 2
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
  enableProfilingHandler: false
  enableContentionProfiling: false
  enableDebuggingHandlers: false
`

func (cp *ControlPlane) writeState() error {
	s := state{PID: os.Getpid(), PIDStart: processStartTime(os.Getpid()), Children: cp.PIDs(), Ports: cp.ports, Started: time.Now().Format(time.RFC3339), Topology: cp.cfg.Topology, PodNetwork: cp.network}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(cp.layout.stateFile(), data, 0o600)
}

// ownerAlive reports whether the process that wrote s still runs: its PID
// is alive and started when s says. `cafe dev down` signals nothing else.
func (s state) ownerAlive() bool {
	return processAlive(s.PID) && s.PIDStart != 0 && processStartTime(s.PID) == s.PIDStart
}

func readState(path string) (state, error) {
	var s state
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
}

// killStaleChildren kills children of a crashed run that are still alive and
// still refer to the state directory (so a recycled pid is left alone).
func killStaleChildren(prev state, dir string) {
	for _, pid := range prev.Children {
		if processAlive(pid) && strings.Contains(processCmdline(pid), dir) {
			p, err := os.FindProcess(pid)
			if err == nil {
				_ = p.Kill()
			}
		}
	}
}

func isAddressInUse(err error) bool {
	var exit *ExitError
	return errors.As(err, &exit) && strings.Contains(exit.LogTail, "address already in use")
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Down stops the `cafe dev up` that owns dir, if one runs, and removes dir.
// It returns the pid it stopped, or 0.
func Down(ctx context.Context, dir string) (int, error) {
	l := layout{dir: dir}
	stopped := 0
	if prev, err := readState(l.stateFile()); err == nil {
		if prev.ownerAlive() && prev.PID != os.Getpid() {
			if err := syscall.Kill(prev.PID, syscall.SIGTERM); err != nil {
				return 0, fmt.Errorf("stopping process %d: %w", prev.PID, err)
			}
			err := wait.PollUntilContextTimeout(ctx, pollInterval, time.Minute, true, func(context.Context) (bool, error) {
				return !processAlive(prev.PID), nil
			})
			if err != nil {
				return 0, fmt.Errorf("process %d did not stop after SIGTERM: %w", prev.PID, err)
			}
			stopped = prev.PID
		}
		killStaleChildren(prev, dir)
		if prev.PodNetwork != nil {
			podnet.Release(ctx, *prev.PodNetwork)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return stopped, fmt.Errorf("removing %s: %w", dir, err)
	}
	return stopped, nil
}

// UserKubeconfig issues a client certificate for a person (user name and
// groups, as the company IAM would map them) signed by the control plane's
// CA and returns the path of a kubeconfig using it. The API server then
// authenticates requests with it as that user, which is how tests act as
// different people.
func (cp *ControlPlane) UserKubeconfig(user string, groups ...string) (string, error) {
	// Certificates are kept per user and groups: a user asked for again with
	// other groups must not get the first call's certificate.
	name := "user-" + user
	if len(groups) > 0 {
		h := fnv.New32a()
		h.Write([]byte(strings.Join(groups, "\x00")))
		name = fmt.Sprintf("%s-%08x", name, h.Sum32())
	}
	id := Identity{Name: name, User: user, Groups: groups}
	if _, err := GeneratePKI(cp.pki.Dir, id); err != nil {
		return "", err
	}
	path := cp.layout.kubeconfig(id)
	if err := writeKubeconfig(path, cp.APIServerURL(), cp.pki, id); err != nil {
		return "", err
	}
	return path, nil
}
