package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// Registry is a service registry (a real etcd, bin/etcd) a test started on
// loopback.
type Registry struct {
	// Endpoint is its client URL.
	Endpoint string
	// Client is a client of it for the test's own reads and writes.
	Client *clientv3.Client

	dir    string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
}

// StartRegistry starts a registry for the test and stops it when the test
// ends. It fails the test unless etcd answers.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := RunRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// RunRegistry starts a registry (for a whole test binary: call Stop when
// done) and waits until it answers. Ports are picked free but may be taken
// before etcd binds them: a start that fails so is retried on new ports.
func RunRegistry() (*Registry, error) {
	var err error
	for range 3 {
		var r *Registry
		if r, err = runRegistry(); err == nil {
			return r, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

func runRegistry() (*Registry, error) {
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("picking the registry's ports: %w", err)
	}
	dir, err := os.MkdirTemp("", "cafe-registry-")
	if err != nil {
		return nil, err
	}
	r := &Registry{Endpoint: controlplane.RegistryURL(ports[0]), dir: dir, exited: make(chan struct{})}
	if r.log, err = os.Create(filepath.Join(dir, "registry.log")); err != nil {
		return nil, err
	}
	r.cmd = exec.Command(filepath.Join(BinDir(), "etcd"), controlplane.RegistryArgs(filepath.Join(dir, "data"), ports[0], ports[1])...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.Stop()
		return nil, fmt.Errorf("starting the registry (bin/etcd; make tools builds it): %w", err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	r.Client, err = clientv3.New(clientv3.Config{Endpoints: []string{r.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		r.Stop()
		return nil, fmt.Errorf("registry client: %w", err)
	}
	if err := r.waitReady(); err != nil {
		out, _ := os.ReadFile(r.log.Name())
		r.Stop()
		return nil, fmt.Errorf("registry at %s: %w\n%s", r.Endpoint, err, out)
	}
	return r, nil
}

// Stop stops the registry and removes its data.
func (r *Registry) Stop() {
	if r.Client != nil {
		_ = r.Client.Close()
	}
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	if r.log != nil {
		_ = r.log.Close()
	}
	_ = os.RemoveAll(r.dir)
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
		case <-r.exited:
			return errors.New("etcd exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
