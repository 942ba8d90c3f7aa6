package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one child of the control plane with its log file.
type process struct {
	name   string
	binary string
	args   []string
	// env is added to this process's environment.
	env     []string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	// ready is the check the process passed at start; a restart waits on it
	// again.
	ready func(context.Context) error

	// exited is closed when the process has exited; err then holds why.
	exited   chan struct{}
	err      error
	stopping bool
	mu       sync.Mutex
}

// ExitError reports a child that exited while it was supposed to run.
type ExitError struct {
	Component string
	Err       error
	LogPath   string
	LogTail   string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited unexpectedly: %v\n--- last lines of %s ---\n%s", e.Component, e.Err, e.LogPath, e.LogTail)
}

// startProcess starts binary with args, its output going to logPath. The
// child is in its own process group (so a terminal's Ctrl-C reaches only us
// and we stop children in order) and receives SIGKILL from the kernel should
// this process die without stopping it.
func startProcess(name, binary string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	fmt.Fprintf(logFile, "=== %s starting at %s: %s %s\n", name, time.Now().Format(time.RFC3339), binary, strings.Join(args, " "))
	cmd := exec.Command(binary, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, binary: binary, args: args, env: env, cmd: cmd, logPath: logPath, logFile: logFile, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// unexpectedExit returns the error describing the exit of a process that was
// not being stopped, or nil while it runs.
func (p *process) unexpectedExit() error {
	select {
	case <-p.exited:
	default:
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return nil
	}
	err := p.err
	if err == nil {
		err = errors.New("exit status 0")
	}
	return &ExitError{Component: p.name, Err: err, LogPath: p.logPath, LogTail: readTail(p.logPath, 20)}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
}

// kill sends SIGKILL to the process group at once, as a crash would, and
// waits for the exit.
func (p *process) kill() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func readTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return tail(string(data), lines)
}

// FreePorts picks n distinct free loopback ports. Another process may take
// one before it is bound; starting components retry on "address in use".
func FreePorts(n int) ([]int, error) {
	// Hold all listeners until every port is chosen so they are distinct.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// processAlive reports whether pid names a live process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// processStartTime is when pid started, in clock ticks since boot (field 22
// of /proc/<pid>/stat); 0 when unknown.
func processStartTime(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// the fields after its closing one, which is field 3.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	start, _ := strconv.ParseUint(fields[19], 10, 64)
	return start
}

// processCmdline returns the NUL-separated command line of pid joined by spaces.
func processCmdline(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(data), "\x00", " ")
}
