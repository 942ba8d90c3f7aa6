package main

import (
	"context"
	"path/filepath"

	"github.com/cafe-io/cafe/internal/controlplane"
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
