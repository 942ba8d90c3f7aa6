package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// managerProcess is `bin/cafe manager` running as a child, so that its CPU
// time and peak RSS can be read from /proc.
type managerProcess struct {
	cmd        *exec.Cmd
	logPath    string
	metricsURL string

	exited chan struct{}
	err    error
}

// startManager runs CAFE's controllers against the control plane as the
// cafe-controller-manager ServiceAccount (`cafe manager --kubeconfig`),
// webhooks off, health probes and metrics on free loopback ports, with
// extraArgs appended, and waits until it answers /readyz.
func startManager(ctx context.Context, cp *controlplane.ControlPlane, binDir string, extraArgs []string) (*managerProcess, error) {
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("picking ports for cafe manager: %w", err)
	}
	args := append([]string{
		"manager",
		"--kubeconfig=" + cp.KubeconfigFor(controlplane.CafeIdentity),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[0]),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
	}, extraArgs...)
	logPath := filepath.Join(cp.StateDir(), "logs", "cafe-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the cafe manager log: %w", err)
	}
	cmd := exec.Command(filepath.Join(binDir, "cafe"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and SIGKILL should the benchmark die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting cafe manager: %w", err)
	}
	m := &managerProcess{cmd: cmd, logPath: logPath, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]), exited: make(chan struct{})}
	go func() {
		m.err = cmd.Wait()
		logFile.Close()
		close(m.exited)
	}()
	if err := m.waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[0])); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

// waitReady polls /readyz (a health endpoint cannot be watched) until it
// answers 200, the manager exits, or a minute passes.
func (m *managerProcess) waitReady(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := m.exitError(); err != nil {
			return false, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for cafe manager to answer %s (log: %s): %w", url, m.logPath, err)
	}
	return nil
}

// exitError is non-nil once the manager has exited.
func (m *managerProcess) exitError() error {
	select {
	case <-m.exited:
		return fmt.Errorf("cafe manager exited (%v); see %s", m.err, m.logPath)
	default:
		return nil
	}
}

// stop sends SIGTERM, then SIGKILL after 10 s, and waits for the exit.
func (m *managerProcess) stop() {
	if m.exitError() != nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}
