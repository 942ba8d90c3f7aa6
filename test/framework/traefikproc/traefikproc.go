// Package traefikproc runs a real Traefik (the repository's bin/traefik)
// on loopback for tests: its API and its "web" entry point on free
// 127.0.0.1 ports, its routing read from a file (the file provider,
// watched) that the test rewrites, and no call home (version check and
// anonymous usage off: the project sends packets only to loopback).
//
// Like managerproc it imports nothing but the control plane, so that any
// test or tool can use it.
package traefikproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// Options say how to run Traefik.
type Options struct {
	// Binary is the traefik binary; default the repository's bin/traefik.
	Binary string
	// Dir holds the dynamic configuration file and the log. Required.
	Dir string
	// Dynamic is the initial dynamic configuration (YAML of the file
	// provider); empty is an empty configuration.
	Dynamic string
	// Args are appended to Traefik's command line (e.g. Kubernetes
	// Gateway provider flags).
	Args []string
}

// Process is one Traefik child.
type Process struct {
	cmd         *exec.Cmd
	apiURL      string
	webURL      string
	dynamicPath string
	logPath     string

	exited chan struct{}
	err    error
}

// DefaultBinary is the repository's bin/traefik.
func DefaultBinary() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "bin/traefik"
	}
	root, err := controlplane.FindRepoRoot(filepath.Dir(file))
	if err != nil {
		return "bin/traefik"
	}
	return filepath.Join(root, "bin", "traefik")
}

// Start runs Traefik and waits until its API answers with the initial
// dynamic configuration loaded. The child is in its own process group and
// gets SIGKILL should this process die first.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Dir == "" {
		return nil, errors.New("traefikproc: Dir is required")
	}
	bin := o.Binary
	if bin == "" {
		bin = DefaultBinary()
	}
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("picking ports for traefik: %w", err)
	}
	p := &Process{
		apiURL:      "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		webURL:      "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		dynamicPath: filepath.Join(o.Dir, "dynamic.yaml"),
		logPath:     filepath.Join(o.Dir, "traefik.log"),
		exited:      make(chan struct{}),
	}
	if err := p.WriteDynamic(o.Dynamic); err != nil {
		return nil, err
	}
	args := append([]string{
		"--global.checknewversion=false",
		"--global.sendanonymoususage=false",
		"--api=true",
		"--api.insecure=true",
		"--api.dashboard=false",
		"--entrypoints.traefik.address=127.0.0.1:" + strconv.Itoa(ports[0]),
		"--entrypoints.web.address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--providers.file.filename=" + p.dynamicPath,
		"--providers.file.watch=true",
		"--log.level=INFO",
	}, o.Args...)
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the traefik log: %w", err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting traefik: %w", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := controlplane.WaitHTTP(waitCtx, controlplane.HTTPProbe{URL: p.apiURL + "/api/version", Stopped: p.ExitError}); err != nil {
		p.Stop()
		return nil, fmt.Errorf("waiting for traefik's API at %s (log: %s): %w", p.apiURL, p.logPath, err)
	}
	return p, nil
}

// APIURL is the base URL of Traefik's API (http://127.0.0.1:<port>).
func (p *Process) APIURL() string { return p.apiURL }

// WebURL is the base URL of the "web" entry point.
func (p *Process) WebURL() string { return p.webURL }

// LogPath is the file holding Traefik's output.
func (p *Process) LogPath() string { return p.logPath }

// WriteDynamic replaces the dynamic configuration, atomically (a rename:
// Traefik's watcher never reads half a file).
func (p *Process) WriteDynamic(yaml string) error {
	tmp := p.dynamicPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		return fmt.Errorf("writing traefik's dynamic configuration: %w", err)
	}
	if err := os.Rename(tmp, p.dynamicPath); err != nil {
		return fmt.Errorf("writing traefik's dynamic configuration: %w", err)
	}
	return nil
}

// ExitError is nil while the process runs, else why it ended.
func (p *Process) ExitError() error {
	select {
	case <-p.exited:
		return fmt.Errorf("traefik exited (%v); see %s", p.err, p.logPath)
	default:
		return nil
	}
}

// Stop sends SIGTERM, then SIGKILL after 10 s, and waits for the exit.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil || p.ExitError() != nil {
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
