package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/agent"
	"github.com/cafe-io/cafe/internal/devenv"
)

// classicFleet is the classic hosts of the classic scenario's control
// plane and the artifact store serving the demo app's packages: what
// `cafe dev up --classic-hosts N` starts (internal/devenv), started here
// beside the benchmark's own cafe manager process (devenv runs CAFE in
// process, where its CPU cannot be told apart).
type classicFleet struct {
	Hosts []devenv.ClassicHost
	Demo  *devenv.DemoApp
	// stopStore stops the artifact store.
	stopStore context.CancelFunc
}

// startClassicFleet gives each of n hosts (devenv.ClassicHostPlan:
// round-robin over zones) a network namespace and an address of its own
// in the control plane's host range, enrols it (a client certificate from
// the cluster's signer, as `cafe host enroll` does), runs its `cafe agent
// --netns` as a child of the control plane (component
// devenv.AgentComponent) and waits until CAFE reports it Ready; then it
// serves the demo app's packages (bin/demo-app, built by `make build`) on
// an artifact store on loopback. Call stop when the control plane has
// stopped; on error what was started is the caller's to stop too.
func startClassicFleet(ctx context.Context, c *cluster, n int, zones []string) (*classicFleet, error) {
	f := &classicFleet{}
	pods := c.cp.PodNetwork()
	if pods == nil {
		return f, errors.New("the control plane runs without a pod network: classic hosts get no network namespace of their own")
	}
	demoBinary := filepath.Join(c.binDir, "demo-app")
	if _, err := os.Stat(demoBinary); err != nil {
		return f, fmt.Errorf("the demo app the classic hosts run: %w (make build builds it)", err)
	}
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return f, fmt.Errorf("building client: %w", err)
	}
	dir := filepath.Join(c.cp.StateDir(), "hosts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	for i, h := range devenv.ClassicHostPlan(n, zones) {
		network, err := pods.HostNetwork(i + 1)
		if err != nil {
			return f, fmt.Errorf("classic host %s: %w", h.Name, err)
		}
		if err := network.Create(ctx); err != nil {
			return f, fmt.Errorf("classic host %s: %w", h.Name, err)
		}
		if err := network.CheckRoute(ctx, network.CIDR.Addr()); err != nil {
			network.Delete(ctx)
			return f, fmt.Errorf("classic host %s: %w", h.Name, err)
		}
		h.Network, h.Address = &network, network.CIDR.Addr().String()
		cred, err := agent.Enroll(ctx, cs, h.Name, agent.DefaultCredentialValidity)
		if err != nil {
			return f, fmt.Errorf("enrolling classic host %s: %w", h.Name, err)
		}
		kc, err := cred.Kubeconfig(c.admin, h.Name)
		if err != nil {
			return f, err
		}
		h.Kubeconfig = filepath.Join(dir, h.Name+".kubeconfig")
		if err := clientcmd.WriteToFile(*kc, h.Kubeconfig); err != nil {
			return f, fmt.Errorf("writing %s: %w", h.Kubeconfig, err)
		}
		h.WorkDir = filepath.Join(dir, h.Name)
		args := []string{"agent", "--kubeconfig", h.Kubeconfig, "--host", h.Name, "--zone", h.Zone, "--address", h.Address,
			"--work-dir", h.WorkDir, "--netns", network.Namespace}
		// Recorded before it starts, so stop finds its instances even if
		// the start fails half way.
		f.Hosts = append(f.Hosts, h)
		if err := c.cp.RunChild(ctx, devenv.AgentComponent(h.Name), filepath.Join(c.binDir, "cafe"), args, classicHostReady(c.client, h.Name)); err != nil {
			return f, err
		}
	}
	// The store serves until stop, not until the start's context ends.
	storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	demo, err := devenv.ServeDemoApp(storeCtx, demoBinary, filepath.Join(c.cp.StateDir(), "artifacts"))
	if err != nil {
		stopStore()
		return f, err
	}
	f.Demo, f.stopStore = demo, stopStore
	return f, nil
}

// stop stops the hosts' instance processes, as the hosts' shutdown would
// (they outlive their agents by design), and the artifact store. The
// agents stop with the control plane, their network namespaces with its
// pod network.
func (f *classicFleet) stop(out func(format string, args ...any)) {
	for _, h := range f.Hosts {
		if err := agent.StopInstances(h.WorkDir, 5*time.Second); err != nil {
			out("stopping the instances of classic host %s: %v\n", h.Name, err)
		}
	}
	if f.stopStore != nil {
		f.stopStore()
	}
}

// classicHostReady waits until CAFE reports the host Ready (heartbeating
// and reachable at its address).
func classicHostReady(c client.Client, name string) func(context.Context) error {
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
