package devenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/agent"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/scheme"
)

// ClassicHost is one classic host the local control plane runs: its
// agent is a child process (component "agent-<Name>").
type ClassicHost struct {
	Name, Zone, Address string
	// Kubeconfig is the agent's credential, issued by `cafe host enroll`'s
	// path (the cluster's client signer).
	Kubeconfig string
	// WorkDir is the agent's work directory (packages, instances).
	WorkDir string
	// Network is the host's own network namespace, holding Address, when
	// the control plane runs a pod network; nil on a loopback address.
	Network *podnet.Network
}

// AgentComponent is the control-plane component name of host's agent, for
// ControlPlane.Kill and Restart.
func AgentComponent(host string) string { return "agent-" + host }

// ClassicHostPlan names n classic hosts round-robin over zones, with
// distinct loopback addresses 127.0.100.1, 127.0.100.2, ...; a control
// plane with a pod network gives each a network namespace and an address
// of its own instead when it starts them (docs/classic-hosts.md).
func ClassicHostPlan(n int, zones []string) []ClassicHost {
	hosts := make([]ClassicHost, n)
	perZone := map[string]int{}
	for i := range hosts {
		zone := zones[i%len(zones)]
		perZone[zone]++
		hosts[i] = ClassicHost{
			Name:    "vm-" + zone + "-" + strconv.Itoa(perZone[zone]),
			Zone:    zone,
			Address: fmt.Sprintf("127.0.100.%d", i+1),
		}
	}
	return hosts
}

// startClassicHosts starts the planned hosts on the Env's control plane
// (StartClassicHosts) and records them.
func (e *Env) startClassicHosts(ctx context.Context, cafeBinary string, hosts []ClassicHost) error {
	started, err := StartClassicHosts(ctx, e.ControlPlane, e.Admin, cafeBinary, hosts)
	e.ClassicHosts = started
	return err
}

// StartClassicHosts enrols each planned host (a client certificate from
// the cluster's signer, as `cafe host enroll` does), gives it a network
// namespace and an address of its own when the control plane runs a pod
// network, and runs `cafe agent` for it as a child of the control plane
// (component AgentComponent), returning once every host is Ready. It
// returns the hosts it started, also on error: their instance processes
// outlive the agents (StopClassicInstances).
func StartClassicHosts(ctx context.Context, cp *controlplane.ControlPlane, admin *rest.Config, cafeBinary string, hosts []ClassicHost) ([]ClassicHost, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	if cafeBinary == "" {
		return nil, fmt.Errorf("classic hosts need the cafe binary to run their agents (controlplane.Config.CafeBinary)")
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, fmt.Errorf("building client: %w", err)
	}
	c, err := client.New(admin, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("building client: %w", err)
	}
	dir := filepath.Join(cp.StateDir(), "hosts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var started []ClassicHost
	for i := range hosts {
		h := hosts[i]
		if err := hostNetwork(ctx, cp, i+1, &h); err != nil {
			return started, err
		}
		cred, err := agent.Enroll(ctx, cs, h.Name, agent.DefaultCredentialValidity)
		if err != nil {
			return started, fmt.Errorf("enrolling classic host %s: %w", h.Name, err)
		}
		kc, err := cred.Kubeconfig(admin, h.Name)
		if err != nil {
			return started, err
		}
		h.Kubeconfig = filepath.Join(dir, h.Name+".kubeconfig")
		if err := clientcmd.WriteToFile(*kc, h.Kubeconfig); err != nil {
			return started, fmt.Errorf("writing %s: %w", h.Kubeconfig, err)
		}
		h.WorkDir = filepath.Join(dir, h.Name)
		args := []string{"agent", "--kubeconfig", h.Kubeconfig, "--host", h.Name, "--zone", h.Zone, "--address", h.Address,
			"--work-dir", h.WorkDir}
		if h.Network != nil {
			args = append(args, "--netns", h.Network.Namespace)
		}
		if cp.RegistryURL() != "" {
			args = append(args, "--registry", cp.RegistryURL())
		}
		// Recorded before it starts, so its instances are stopped even if
		// the start fails half way.
		started = append(started, h)
		if err := cp.RunChild(ctx, AgentComponent(h.Name), cafeBinary, args, hostReady(c, h.Name)); err != nil {
			return started, err
		}
	}
	return started, nil
}

// hostNetwork gives the i-th host a network namespace and an address of
// its own when the control plane runs a pod network (released with it).
// Nothing is sent to the address unless the machine routes it into the
// namespace.
func hostNetwork(ctx context.Context, cp *controlplane.ControlPlane, i int, h *ClassicHost) error {
	pods := cp.PodNetwork()
	if pods == nil {
		return nil
	}
	n, err := pods.HostNetwork(i)
	if err != nil {
		return fmt.Errorf("classic host %s: %w", h.Name, err)
	}
	if err := n.Create(ctx); err != nil {
		return fmt.Errorf("classic host %s: %w", h.Name, err)
	}
	if err := n.CheckRoute(ctx, n.CIDR.Addr()); err != nil {
		n.Delete(ctx)
		return fmt.Errorf("classic host %s: %w", h.Name, err)
	}
	h.Network, h.Address = &n, n.CIDR.Addr().String()
	return nil
}

// SetClassicHostLink cuts the named host off its network (up false), as a
// failed link would, or restores it: the fault a test injects.
func (e *Env) SetClassicHostLink(ctx context.Context, host string, up bool) error {
	for _, h := range e.ClassicHosts {
		if h.Name != host {
			continue
		}
		if h.Network == nil {
			return fmt.Errorf("classic host %s has no network namespace of its own (the control plane runs no pod network)", host)
		}
		return h.Network.SetLink(ctx, up)
	}
	return fmt.Errorf("no classic host %s", host)
}

// hostReady waits until the host's Ready condition is True.
func hostReady(c client.Client, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			h := &cafev1alpha1.ClassicHost{}
			if err := c.Get(ctx, client.ObjectKey{Name: name}, h); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return meta.IsStatusConditionTrue(h.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition), nil
		})
	}
}

// stopClassicInstances stops the instance processes of every host, as
// the hosts' shutdown would: they outlive their agents by design.
func (e *Env) stopClassicInstances() {
	StopClassicInstances(e.ClassicHosts, func(h ClassicHost, err error) {
		e.opts.Logger.Error(err, "stopping the instances of classic host", "host", h.Name)
	})
}

// StopClassicInstances stops the instance processes of the hosts, as the
// hosts' shutdown would, reporting each failure to failed.
func StopClassicInstances(hosts []ClassicHost, failed func(ClassicHost, error)) {
	for _, h := range hosts {
		if err := agent.StopInstances(h.WorkDir, 5*time.Second); err != nil {
			failed(h, err)
		}
	}
}

// serveDemoApp serves the demo app's packages on an artifact store on
// loopback when the control plane runs classic hosts and the demo app's
// binary exists.
func (e *Env) serveDemoApp(ctx context.Context, demoBinary, sourceDir string) error {
	if len(e.ClassicHosts) == 0 || demoBinary == "" {
		return nil
	}
	if err := ensureDemoApp(ctx, demoBinary, sourceDir); err != nil {
		return err
	}
	// The store serves until Stop, not until the start's context ends.
	storeCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d, err := ServeDemoApp(storeCtx, demoBinary, filepath.Join(e.ControlPlane.StateDir(), "artifacts"))
	if err != nil {
		stop()
		return err
	}
	e.DemoApp, e.stopDemoApp = d, stop
	return nil
}

// ensureDemoApp builds the demo app into binary from sourceDir when it is
// missing (`make build` builds it; this serves a bare `cafe dev up
// --source-dir`).
func ensureDemoApp(ctx context.Context, binary, sourceDir string) error {
	if _, err := os.Stat(binary); err == nil {
		return nil
	} else if sourceDir == "" {
		return fmt.Errorf("the demo app for classic hosts: %w (make build builds it)", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binary, "./examples/demo-app")
	cmd.Dir = sourceDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the demo app: %w\n%s", err, out)
	}
	return nil
}
