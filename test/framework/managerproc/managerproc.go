// Package managerproc runs CAFE's controllers as a real OS process —
// `cafe manager --kubeconfig …` under the cafe-controller-manager identity of
// a local control plane — for the benchmark (which reads the process's CPU
// time and RSS from /proc) and for the e2e tests that SIGKILL it.
//
// It imports nothing but the control plane so that the benchmark, a main
// package with its own flags, can use it without the test framework.
package managerproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// Options say which binary to run against which control plane.
type Options struct {
	// Binary is the cafe binary.
	Binary string
	// ControlPlane is the control plane the manager connects to, as
	// controlplane.CafeIdentity.
	ControlPlane *controlplane.ControlPlane
	// Args are appended to the manager's command line (e.g.
	// --kube-api-qps=50). Without --webhook-port the manager serves no
	// webhooks.
	Args []string
	// LogPath receives the manager's output; default
	// <state dir>/logs/cafe-manager.log. An existing file is truncated.
	LogPath string
}

// Process is one controller child: `cafe manager`, or a peer controller
// the benchmark runs beside it (StartController).
type Process struct {
	name       string
	cmd        *exec.Cmd
	logPath    string
	metricsURL string

	exited chan struct{}
	err    error
}

// Start runs `cafe manager` with health probes and metrics on free
// loopback ports and waits until it answers /readyz (its probe server is
// up; its caches may still be syncing). The child is in its own process
// group and gets SIGKILL should this process die first.
func Start(ctx context.Context, o Options) (*Process, error) {
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("picking ports for cafe manager: %w", err)
	}
	logPath := o.LogPath
	if logPath == "" {
		logPath = filepath.Join(o.ControlPlane.StateDir(), "logs", "cafe-manager.log")
	}
	return StartController(ctx, Controller{
		Name:   "cafe manager",
		Binary: o.Binary,
		Args: append([]string{
			"manager",
			"--kubeconfig=" + o.ControlPlane.KubeconfigFor(controlplane.CafeIdentity),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[0]),
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
			// The benchmark scrapes the loopback endpoint without a token.
			"--metrics-insecure",
		}, o.Args...),
		LogPath:    logPath,
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[0]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
	})
}

// Controller is any controller binary to run as a child.
type Controller struct {
	// Name names it in errors ("cafe manager", "kruise-manager").
	Name   string
	Binary string
	Args   []string
	// Env is added to this process's environment.
	Env []string
	// LogPath receives its output (truncated first).
	LogPath string
	// ReadyURL answers 200 once it is up; MetricsURL is its Prometheus
	// endpoint.
	ReadyURL, MetricsURL string
}

// StartController runs c in its own process group (SIGKILLed should this
// process die first) and waits until it answers c.ReadyURL.
func StartController(ctx context.Context, c Controller) (*Process, error) {
	logFile, err := os.Create(c.LogPath)
	if err != nil {
		return nil, fmt.Errorf("creating the %s log: %w", c.Name, err)
	}
	cmd := exec.Command(c.Binary, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	p := &Process{name: c.Name, cmd: cmd, logPath: c.LogPath, metricsURL: c.MetricsURL, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, c.ReadyURL); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// MetricsURL is the manager's Prometheus endpoint.
func (p *Process) MetricsURL() string { return p.metricsURL }

// LogPath is the file holding the manager's output.
func (p *Process) LogPath() string { return p.logPath }

// Exited is closed once the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitError is nil while the process runs, else why it ended.
func (p *Process) ExitError() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v); see %s", p.name, p.err, p.logPath)
	default:
		return nil
	}
}

// waitReady polls /readyz (a health endpoint cannot be watched) until it
// answers 200, the manager exits, or a minute passes.
func (p *Process) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := controlplane.WaitHTTP(ctx, controlplane.HTTPProbe{URL: url, Stopped: p.ExitError}); err != nil {
		return fmt.Errorf("waiting for %s to answer %s (log: %s): %w", p.name, url, p.logPath, err)
	}
	return nil
}

// Kill sends SIGKILL — no shutdown code of the manager runs, as when a
// node or the kernel kills it — and returns once the process is reaped.
// It fails if the process had already exited on its own.
func (p *Process) Kill() error {
	if err := p.ExitError(); err != nil {
		return fmt.Errorf("not killed, it had already ended: %w", err)
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing %s (pid %d): %w", p.name, p.Pid(), err)
	}
	<-p.exited
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return fmt.Errorf("%s (pid %d) did not end by SIGKILL: %v; see %s", p.name, p.Pid(), p.err, p.logPath)
	}
	return nil
}

// Stop sends SIGTERM, then SIGKILL after 10 s, and waits for the exit.
func (p *Process) Stop() {
	if p.ExitError() != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
