package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/memlimit"
	"github.com/cafe-io/cafe/test/framework/managerproc"
)

// managerProcess is `bin/cafe manager` running as a child, so that its CPU
// time and peak RSS can be read from /proc (test/framework/managerproc,
// shared with the e2e test that kills it).
type managerProcess struct {
	*managerproc.Process
	metricsURL string
	exited     <-chan struct{}
}

// startManager runs CAFE's controllers against the control plane as the
// cafe-controller-manager ServiceAccount (`cafe manager --kubeconfig`),
// health probes and metrics on free loopback ports, with extraArgs (the
// webhook server's among them) appended, and waits until it answers /readyz.
func startManager(ctx context.Context, cp *controlplane.ControlPlane, binDir string, extraArgs []string) (*managerProcess, error) {
	p, err := managerproc.Start(ctx, managerproc.Options{Binary: filepath.Join(binDir, "cafe"), ControlPlane: cp, Args: extraArgs})
	if err != nil {
		return nil, err
	}
	return &managerProcess{Process: p, metricsURL: p.MetricsURL(), exited: p.Exited()}, nil
}

func (m *managerProcess) pid() int         { return m.Pid() }
func (m *managerProcess) exitError() error { return m.ExitError() }
func (m *managerProcess) stop()            { m.Stop() }

// installedMemoryArgs gives cafe manager the soft memory limit an install
// gives it: `--memory-limit=auto` takes a share (memlimit.Share) of
// the container's limit in config/manager/manager.yaml, and a process
// started here has no container. Nothing when -manager-args sets one.
func installedMemoryArgs(repoRoot string, managerArgs []string) ([]string, error) {
	for _, a := range managerArgs {
		if strings.HasPrefix(a, "--memory-limit") {
			return nil, nil
		}
	}
	limit, err := installedMemoryLimit(repoRoot)
	if err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("--memory-limit=%d", memlimit.Share(limit))}, nil
}

// installedMemoryLimit is the manager container's memory limit in
// config/manager/manager.yaml, in bytes.
func installedMemoryLimit(repoRoot string) (int64, error) {
	file := filepath.Join(repoRoot, "config", "manager", "manager.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	// The file holds the Deployment alone.
	d := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict(raw, d); err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "manager" {
			continue
		}
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok {
			return 0, fmt.Errorf("%s: container manager has no memory limit", file)
		}
		return q.Value(), nil
	}
	return 0, fmt.Errorf("%s: no container named manager", file)
}
