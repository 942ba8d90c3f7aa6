package framework

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/scheme"
)

// EnvtestMain runs a test package against one real API server (envtest on
// the project's binaries, CRDs installed) shared by all its tests, after
// setup has built what the tests use from its config. In -short mode no API
// server starts and setup is not called: tests that need one skip through
// RequireAPIServer. It returns the exit code for os.Exit.
func EnvtestMain(m *testing.M, setup func(cfg *rest.Config) error) int {
	return runEnvtest(m, StartEnvtest, func(_ context.Context, _ *envtest.Environment, cfg *rest.Config) (func(), error) {
		return func() {}, setup(cfg)
	})
}

// EnvtestClientMain is EnvtestMain for a package whose tests need only a
// client of the API server: it sets *c to one (NewClient) before the tests
// run; in -short mode *c stays nil.
func EnvtestClientMain(m *testing.M, c *client.WithWatch) int {
	return EnvtestMain(m, func(cfg *rest.Config) (err error) {
		*c, err = NewClient(cfg)
		return err
	})
}

// EnvtestWithWebhooksMain is EnvtestMain on StartEnvtestWithWebhooks: start
// builds what the tests use (a manager serving the webhooks, say) and
// returns how to stop it, which runs after the tests and before the API
// server stops.
func EnvtestWithWebhooksMain(m *testing.M, start func(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (stop func(), err error)) int {
	return runEnvtest(m, StartEnvtestWithWebhooks, start)
}

// runEnvtest runs m against the API server startEnv starts, after start
// has built what the tests use; the stop that start returns runs after the
// tests and before the API server stops. Controller-runtime logs go to
// stderr with -v. In -short mode nothing starts.
func runEnvtest(m *testing.M,
	startEnv func(context.Context) (*envtest.Environment, *rest.Config, error),
	start func(context.Context, *envtest.Environment, *rest.Config) (stop func(), err error),
) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping API server tests in -short mode")
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	log := logr.Discard()
	if testing.Verbose() {
		log = zap.New(zap.WriteTo(os.Stderr))
	}
	ctrllog.SetLogger(log)
	env, cfg, err := startEnv(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	stop, err := start(ctx, env, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "setting up the test package: %v\n", err)
		return 1
	}
	defer stop()
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
