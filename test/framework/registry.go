package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// Registry is a service registry (a real etcd, bin/etcd) a test started on
// loopback.
type Registry struct {
	// Endpoint is its client URL.
	Endpoint string
	// Client is a client of it for the test's own reads and writes.
	Client *clientv3.Client

	cmd *exec.Cmd
}

// StartRegistry starts a registry for the test and stops it (and closes
// its client) when the test ends. It fails the test unless etcd answers.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		t.Fatalf("picking the registry's ports: %v", err)
	}
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(BinDir(), "etcd"), controlplane.RegistryArgs(filepath.Join(dir, "data"), ports[0], ports[1])...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the registry (bin/etcd; make tools builds it): %v", err)
	}
	r := &Registry{Endpoint: controlplane.RegistryURL(ports[0]), cmd: cmd}
	t.Cleanup(func() {
		if r.Client != nil {
			_ = r.Client.Close()
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
	r.Client, err = clientv3.New(clientv3.Config{Endpoints: []string{r.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("registry client: %v", err)
	}
	if err := r.waitReady(); err != nil {
		out, _ := os.ReadFile(log.Name())
		t.Fatalf("registry at %s: %v\n%s", r.Endpoint, err, out)
	}
	return r
}

// waitReady waits until the registry answers a read.
func (r *Registry) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := r.Client.Get(rctx, "health-check")
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
