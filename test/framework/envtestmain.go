package framework

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/scheme"
)

// EnvtestMain runs a test package against one real API server (envtest on
// the project's binaries, CRDs installed) shared by all its tests, after
// setup has built what the tests use from its config. In -short mode no API
// server starts and setup is not called: tests that need one skip through
// RequireAPIServer. It returns the exit code for os.Exit.
func EnvtestMain(m *testing.M, setup func(cfg *rest.Config) error) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping API server tests in -short mode")
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env, cfg, err := StartEnvtest(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	if err := setup(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "setting up the test package: %v\n", err)
		return 1
	}
	return m.Run()
}

// NewClient is a client with CAFE's scheme that can also watch.
func NewClient(cfg *rest.Config) (client.WithWatch, error) {
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme.New()})
}

// RequireAPIServer skips t when the package runs without an API server
// (-short mode).
func RequireAPIServer(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the API server (not started in -short mode)")
	}
}
