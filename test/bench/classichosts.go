package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	hosts, err := devenv.StartClassicHosts(ctx, c.cp, c.admin, filepath.Join(c.binDir, "cafe"), devenv.ClassicHostPlan(n, zones))
	f.Hosts = hosts
	if err != nil {
		return f, err
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
	devenv.StopClassicInstances(f.Hosts, func(h devenv.ClassicHost, err error) {
		out("stopping the instances of classic host %s: %v\n", h.Name, err)
	})
	if f.stopStore != nil {
		f.stopStore()
	}
}
