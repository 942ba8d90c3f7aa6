package framework

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/agent"
	"github.com/cafe-io/cafe/internal/devenv"
	"github.com/cafe-io/cafe/internal/scheme"
)

// addUserMu guards envtest's certificate authority, which is not safe for
// concurrent use (it counts serial numbers unguarded).
var addUserMu sync.Mutex

// HostIdentity is the credential `cafe host enroll` would issue for host
// (user cafe:host:<host> in group cafe:hosts, a client certificate the
// suite's API server authenticates): a client and its config.
func (s *ControllerSuite) HostIdentity(t *testing.T, g Gomega, host string) (client.Client, *rest.Config) {
	t.Helper()
	addUserMu.Lock()
	defer addUserMu.Unlock()
	u, err := s.Env.AddUser(envtest.User{Name: cafev1alpha1.ClassicHostUser(host), Groups: []string{cafev1alpha1.ClassicHostsGroup}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(u.Config(), client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c, u.Config()
}

// AgentOptions describes host's agent in tests: a fast heartbeat and
// health checks, a work directory of the test's.
func AgentOptions(t *testing.T, host, zone, address string) agent.Options {
	return agent.Options{Host: host, Zone: zone, Address: address, Capacity: 4,
		LeaseDuration: 2 * time.Second, RenewInterval: 500 * time.Millisecond, Version: "test-1",
		WorkDir: t.TempDir(), HealthPeriod: 200 * time.Millisecond, StopGrace: 5 * time.Second}
}

// RunAgent runs a real `cafe agent` (in the test process) with opts, under
// its host's credential, until the returned stop is called or the test
// ends.
func (s *ControllerSuite) RunAgent(t *testing.T, g Gomega, opts agent.Options) (stop func()) {
	t.Helper()
	_, cfg := s.HostIdentity(t, g, opts.Host)
	a := &agent.Agent{Options: opts, Config: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			g.Expect(<-done).To(Succeed())
		}
	}
	// The instances' processes outlive their agent (as containers outlive
	// a kubelet restart): stop them when the test ends, as a host's
	// shutdown would, so no test leaves processes behind.
	t.Cleanup(func() {
		if err := agent.StopInstances(opts.WorkDir, opts.StopGrace); err != nil {
			t.Errorf("stopping the instances of host %s: %v", opts.Host, err)
		}
	})
	t.Cleanup(stop)
	return stop
}

var (
	demoOnce sync.Once
	demo     *devenv.DemoApp
	demoErr  error
)

// DemoApp is the demo app's packages (v1, v2, v3-fail) on an artifact
// store on loopback, built and served once per test binary.
func DemoApp(g Gomega) *devenv.DemoApp {
	demoOnce.Do(func() {
		bin, err := DemoAppBinary()
		if err != nil {
			demoErr = err
			return
		}
		demo, demoErr = devenv.ServeDemoApp(context.Background(), bin, filepath.Join(filepath.Dir(bin), "store"))
	})
	g.Expect(demoErr).NotTo(HaveOccurred())
	return demo
}
