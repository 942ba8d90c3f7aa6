package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/devenv"
	"github.com/cafe-io/cafe/test/framework"
)

// Shared by every test of the package: one control plane with 6 kwok nodes
// over zone-a, zone-b and zone-c, the gateway and the pod emulator; each
// test works in its own namespace.
var (
	env       *devenv.Env
	k8sClient client.WithWatch
	clientset kubernetes.Interface
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping e2e tests in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var err error
	// Traffic: the pod emulator answers on the simulated pods' IPs and a
	// real gateway (Traefik) routes to them; see traffic_test.go. Three
	// classic hosts, one per zone, run instances beside the pods; see
	// classic_traffic_test.go.
	env, err = framework.StartEnv(ctx, framework.EnvOptions{Traffic: true, Directory: true, ClassicHosts: 3})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the local control plane: %v\n", err)
		return 1
	}
	defer func() {
		stateDir := env.ControlPlane.StateDir()
		env.Stop()
		_ = os.RemoveAll(stateDir)
	}()
	if k8sClient, err = framework.NewClient(env.Admin); err != nil {
		fmt.Fprintf(os.Stderr, "building client: %v\n", err)
		return 1
	}
	if clientset, err = kubernetes.NewForConfig(env.Admin); err != nil {
		fmt.Fprintf(os.Stderr, "building clientset: %v\n", err)
		return 1
	}
	return m.Run()
}

// runsBesideOthers marks a test that spends most of its time waiting on
// the clock (a change window, a progress deadline, a token's lifetime, a
// traffic step's duration) and changes nothing outside its own namespaces
// (and, for one, a directory group no other test so marked reads). Go runs
// it after the package's sequential tests, beside the other tests so
// marked (hack/test.sh sets -parallel), so their waits overlap. A test that
// stops, restarts or reconfigures a shared component (the gateway,
// Prometheus, the emulator, the controllers, the directory's schema) must
// not be.
func runsBesideOthers(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// testContext bounds one test; a hung wait fails the test instead of the run.
func testContext(t *testing.T) context.Context {
	t.Helper()
	return testContextWithin(t, 3*time.Minute)
}

// testContextWithin is testContext for a test that needs longer than
// most (several releases under load on a machine running the other tests).
func testContextWithin(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
