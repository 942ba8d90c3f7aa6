// Package agent is `cafe agent`, the process that runs on a classic host:
// it registers the host as a ClassicHost, states that it can run instances
// (AgentReady) and heartbeats through a Lease in cafe-host-lease, with the
// kubelet's own Lease controller. It runs the host's ClassicInstances:
// fetches each one's package, checks its SHA-256, runs its process and
// health-checks it. It acts only with the host's credential (user
// cafe:host:<name>), which admission confines to this host.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/internal/ssa"
)

// FieldOwner is the agent's server-side-apply field manager: it owns the
// host's spec fields it registers and its own status fields, nothing else.
const FieldOwner = client.FieldOwner("cafe-agent")

// Defaults of the heartbeat, the kubelet's: a renewal every 10 s of a
// 40 s Lease.
const (
	DefaultLeaseDuration = 40 * time.Second
	DefaultRenewInterval = 10 * time.Second
)

// Defaults of instance supervision: a health check every second, and ten
// seconds for a process to end after SIGTERM before it is killed.
const (
	DefaultHealthPeriod = time.Second
	DefaultStopGrace    = 10 * time.Second
)

// DefaultHealthPort is the agent's health endpoint's port on the host's
// address.
const DefaultHealthPort = 10351

// Options describe the host the agent runs on.
type Options struct {
	// Host is the ClassicHost's name; the credential's user must be
	// cafe:host:<Host>.
	Host string
	// Zone, Cell and Address go into the host's spec.
	Zone, Cell, Address string
	// Capacity is how many instances the host runs at most (0: the API's
	// default).
	Capacity int32
	// LeaseDuration and RenewInterval shape the heartbeat.
	LeaseDuration, RenewInterval time.Duration
	// Version is the agent's version, reported in status.agentVersion.
	Version string
	// WorkDir holds the unpacked packages and each instance's directory
	// (process record, working directory, output log).
	WorkDir string
	// HealthPeriod is how often a running instance is health-checked;
	// StopGrace how long a process has to end after SIGTERM.
	HealthPeriod, StopGrace time.Duration
	// HealthPort is the port of the agent's health endpoint on Address
	// (0: any free port), which CAFE probes to tell the host reachable.
	HealthPort int
	// NetNS, when set, is the network namespace (under /run/netns) that
	// holds Address, where the instances' processes are started: the
	// local control plane gives each emulated host one. Empty on a real
	// host.
	NetNS string
	// Registry, when set, is the shared service registry's client URL,
	// given to every instance as CAFE_REGISTRY (through a relay on the
	// host's address when the host has a network namespace of its own).
	Registry string
	// RegistryRelayPort is the relay's port on Address (0: any free port).
	RegistryRelayPort int
}

// Validate names the first missing or malformed option.
func (o *Options) Validate() error {
	switch {
	case o.Host == "":
		return errors.New("--host: the ClassicHost's name is required")
	case o.Zone == "":
		return errors.New("--zone: the host's zone is required")
	case o.Address == "":
		return errors.New("--address: the address the host's instances serve on is required")
	case o.LeaseDuration < time.Second || o.LeaseDuration%time.Second != 0:
		return fmt.Errorf("--lease-duration %s: whole seconds, at least 1s", o.LeaseDuration)
	case o.RenewInterval <= 0 || o.RenewInterval >= o.LeaseDuration:
		return fmt.Errorf("--renew-interval %s: must be positive and shorter than --lease-duration %s", o.RenewInterval, o.LeaseDuration)
	case o.WorkDir == "":
		return errors.New("--work-dir: the directory for packages and instances is required")
	case o.HealthPeriod <= 0:
		return fmt.Errorf("--health-period %s: must be positive", o.HealthPeriod)
	case o.StopGrace <= 0:
		return fmt.Errorf("--stop-grace %s: must be positive", o.StopGrace)
	case o.HealthPort < 0 || o.HealthPort > 65535:
		return fmt.Errorf("--health-port %d: a TCP port (0 for any free one)", o.HealthPort)
	case o.NetNS != "" && !netnsExists(o.NetNS):
		return fmt.Errorf("--netns %s: no such network namespace under /run/netns", o.NetNS)
	}
	return o.checkRegistry()
}

// Agent registers, heartbeats and runs the instances of one classic host.
type Agent struct {
	Options
	// Config carries the host's credential.
	Config *rest.Config
	// Client writes the ClassicHost.
	Client client.Client
}

// Run registers the host, then heartbeats and runs its instances until ctx
// ends. A registration the API refuses (a zone that differs from the
// host's recorded one, a credential for another host) ends it with that
// error. Ending leaves the instances' processes running, as a kubelet's
// restart leaves containers: the next agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Validate(); err != nil {
		return err
	}
	clientset, err := kubernetes.NewForConfig(a.Config)
	if err != nil {
		return fmt.Errorf("creating the clientset: %w", err)
	}
	if a.Client == nil {
		if a.Client, err = client.New(a.Config, client.Options{Scheme: scheme.New()}); err != nil {
			return fmt.Errorf("creating the client: %w", err)
		}
	}
	registryURL, relayPort, err := a.instancesRegistry(ctx)
	if err != nil {
		return err
	}
	mgr, err := a.newManager(registryURL)
	if err != nil {
		return err
	}
	health, err := a.listenHealth()
	if err != nil {
		return err
	}
	go serveHealth(ctx, health)
	host, err := a.Register(ctx, int32(health.Addr().(*net.TCPAddr).Port), relayPort)
	if err != nil {
		return err
	}
	logger := log.FromContext(ctx).WithValues("host", a.Host)
	logger.Info("host registered", "zone", host.Spec.Zone, "address", host.Spec.Address)
	heartbeat := lease.NewController(clock.RealClock{}, clientset, a.Host, int32(a.LeaseDuration/time.Second),
		func() { logger.Info("heartbeat failing repeatedly") }, a.RenewInterval,
		a.Host, cafev1alpha1.ClassicHostLeaseNamespace, ownedBy(host))
	go heartbeat.Run(ctx) // returns when ctx ends
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the host's instances: %w", err)
	}
	return nil
}

// newManager runs the instance controller on a cache of the host's own
// instances only (field selector spec.hostName), without metrics, probes
// or leader election: one agent per host. registryURL is the shared
// registry as the instances reach it ("" for none).
func (a *Agent) newManager(registryURL string) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(a.Config, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&cafev1alpha1.ClassicInstance{}: {Field: fields.OneTermEqualSelector(cafev1alpha1.ClassicInstanceHostField, a.Host)},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the agent's controller manager: %w", err)
	}
	if err := newInstances(mgr.GetClient(), a.Options, registryURL).setup(mgr); err != nil {
		return nil, fmt.Errorf("setting up the instance controller: %w", err)
	}
	return mgr, nil
}

// Register applies the host's spec and the agent's status (version, health
// endpoint, the ports it listens on, AgentReady) and returns the host as
// the API server stored it. relayPort is the registry relay's (0: none).
func (a *Agent) Register(ctx context.Context, healthPort, relayPort int32) (*cafev1alpha1.ClassicHost, error) {
	spec := &cafev1alpha1.ClassicHost{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicHost"},
		ObjectMeta: metav1.ObjectMeta{Name: a.Host},
		Spec: cafev1alpha1.ClassicHostSpec{
			Zone: a.Zone, Cell: a.Cell, Address: a.Address,
			Capacity: cafev1alpha1.ClassicHostCapacity{Instances: a.Capacity},
		},
	}
	body, err := ssa.Body(spec, "status")
	if err != nil {
		return nil, err
	}
	if err := a.Client.Apply(ctx, body, FieldOwner, client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("registering host %s: %w", a.Host, err)
	}
	status := &cafev1alpha1.ClassicHost{
		TypeMeta:   spec.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: a.Host},
		Status: cafev1alpha1.ClassicHostStatus{
			AgentVersion:  a.Version,
			AgentEndpoint: &cafev1alpha1.ClassicHostAgentEndpoint{Port: healthPort},
			ReservedPorts: reservedPorts(healthPort, relayPort),
			Conditions: []metav1.Condition{{
				Type: cafev1alpha1.ClassicHostAgentReadyCondition, Status: metav1.ConditionTrue,
				Reason: "AgentStarted", Message: "the agent runs and can supervise instances",
				LastTransitionTime: metav1.Now(),
			}},
		},
	}
	if body, err = ssa.Body(status, "spec"); err != nil {
		return nil, err
	}
	if err := a.Client.Status().Apply(ctx, body, FieldOwner, client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("reporting the agent's status on host %s: %w", a.Host, err)
	}
	host := &cafev1alpha1.ClassicHost{}
	if err := a.Client.Get(ctx, client.ObjectKey{Name: a.Host}, host); err != nil {
		return nil, fmt.Errorf("reading host %s back: %w", a.Host, err)
	}
	return host, nil
}

// reservedPorts lists the agent's own ports on the host's address.
func reservedPorts(healthPort, relayPort int32) []int32 {
	if relayPort == 0 || relayPort == healthPort {
		return []int32{healthPort}
	}
	return []int32{healthPort, relayPort}
}

// listenHealth opens the health endpoint's socket on the host's address,
// inside the host's network namespace when it has one: CAFE's probe takes
// the path the instances' traffic takes.
func (a *Agent) listenHealth() (net.Listener, error) {
	address := net.JoinHostPort(a.Address, strconv.Itoa(a.HealthPort))
	var ln net.Listener
	listen := func() (err error) {
		ln, err = net.Listen("tcp", address)
		return err
	}
	var err error
	if a.NetNS != "" {
		err = podnet.InNamespace(a.NetNS, listen)
	} else {
		err = listen()
	}
	if err != nil {
		return nil, fmt.Errorf("--health-port: listening on %s: %w", address, err)
	}
	return ln, nil
}

// serveHealth answers GET /healthz with "ok" until ctx ends.
func serveHealth(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.FromContext(ctx).Error(err, "the health endpoint stopped")
	}
}

// ownedBy makes the host own its Lease, as a Node owns the kubelet's: the
// Lease goes when an administrator deletes the host.
func ownedBy(host *cafev1alpha1.ClassicHost) lease.ProcessLeaseFunc {
	return func(l *coordinationv1.Lease) error {
		if len(l.OwnerReferences) == 0 {
			l.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicHost", Name: host.Name, UID: host.UID,
			}}
		}
		return nil
	}
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}
