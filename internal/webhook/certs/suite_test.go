package certs_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/test/framework"
)

// k8sClient talks to a real kube-apiserver (envtest on the project's own etcd
// and kube-apiserver), so webhook configuration validation, resourceVersion
// conflicts and AlreadyExists races behave exactly as in a cluster. It is nil
// in -short mode.
var k8sClient client.WithWatch

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping API server tests in -short mode")
		os.Exit(m.Run())
	}
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env, cfg, err := framework.StartEnvtest(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	if k8sClient, err = client.NewWithWatch(cfg, client.Options{Scheme: manager.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// requireAPIServer skips a test in -short mode, where no API server runs.
func requireAPIServer(t *testing.T) {
	t.Helper()
	if k8sClient == nil {
		t.Skip("needs the API server (not started in -short mode)")
	}
}
