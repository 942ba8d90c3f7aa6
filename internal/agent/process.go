package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cafe-io/cafe/internal/podnet"
)

// processRecord is what the agent keeps on disk of an instance's process,
// so that a restarted agent adopts the processes its predecessor started
// (they run in their own process group and outlive the agent, as
// containers outlive a kubelet restart).
type processRecord struct {
	PID int `json:"pid"`
	// StartTicks is the process's start time in clock ticks since boot
	// (field 22 of /proc/<pid>/stat): with the PID it tells the process
	// from a later one that reused the PID.
	StartTicks uint64 `json:"startTicks"`
	// Launch identifies what was started: the package and the command,
	// environment and port it was started with.
	Launch    string    `json:"launch"`
	SHA256    string    `json:"sha256"`
	StartedAt time.Time `json:"startedAt"`
	Restarts  int32     `json:"restarts"`
	// Port is the port the process was told to listen on (0 in records
	// of agents before it was kept).
	Port int32 `json:"port,omitempty"`
}

// launchSpec is everything that starts an instance's process.
type launchSpec struct {
	// Key names the instance (namespace/name); Dir is its own directory
	// (working directory and output log), PackageDir the unpacked package.
	Key, Dir, PackageDir string
	Command              []string
	Env                  []string
	SHA256               string
	// NetNS, when set, is the network namespace (under /run/netns) the
	// process is started in: the host's own on the local control plane.
	NetNS string
	// Launch is the hash of the fields above that a change of restarts
	// the process for.
	Launch string
	// Port is the port the process listens on: already in Env (as
	// CAFE_LISTEN), kept apart to tell which process holds it.
	Port int32
}

const recordFile = "process.json"

// start starts spec's process in its own process group (so that neither a
// signal to the agent's group nor the agent's death reaches it), with its
// output appended to Dir/output.log, and records it.
func start(spec launchSpec, restarts int32) (*processRecord, *exec.Cmd, error) {
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating the instance directory: %w", err)
	}
	program := spec.Command[0]
	if !filepath.IsAbs(program) {
		program = filepath.Join(spec.PackageDir, program)
	}
	out, err := os.OpenFile(filepath.Join(spec.Dir, "output.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the output log: %w", err)
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(program, spec.Command[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := startIn(spec.NetNS, cmd); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", program, err)
	}
	ticks, err := startTicks(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, err
	}
	rec := &processRecord{PID: cmd.Process.Pid, StartTicks: ticks, Launch: spec.Launch, SHA256: spec.SHA256,
		StartedAt: time.Now().UTC().Truncate(time.Second), Restarts: restarts, Port: spec.Port}
	if err := writeRecord(spec.Dir, rec); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, err
	}
	return rec, cmd, nil
}

// startIn starts cmd in the network namespace netns, or in the agent's own
// when netns is empty: a child is created in the namespace of the thread
// that forks it.
func startIn(netns string, cmd *exec.Cmd) error {
	if netns == "" {
		return cmd.Start()
	}
	return podnet.InNamespace(netns, cmd.Start)
}

// alive: the recorded process still runs (the same process, not a later
// one with its PID) and has not exited into a zombie.
func (r *processRecord) alive() bool {
	ticks, err := startTicks(r.PID)
	return err == nil && ticks == r.StartTicks
}

// stop sends SIGTERM to the process's group, waits up to grace for the
// process to go, then sends SIGKILL. exited, when not nil, is closed when
// the agent's own child has been reaped.
func (r *processRecord) stop(grace time.Duration, exited <-chan struct{}) {
	_ = syscall.Kill(-r.PID, syscall.SIGTERM)
	if r.waitGone(grace, exited) {
		return
	}
	_ = syscall.Kill(-r.PID, syscall.SIGKILL)
	r.waitGone(5*time.Second, exited)
}

// waitGone polls until the process is gone or d passes.
func (r *processRecord) waitGone(d time.Duration, exited <-chan struct{}) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return true
		case <-deadline.C:
			return !r.alive()
		case <-tick.C:
			if exited == nil && !r.alive() {
				return true
			}
		}
	}
}

func writeRecord(dir string, rec *processRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the process record: %w", err)
	}
	tmp := filepath.Join(dir, recordFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing the process record: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, recordFile)); err != nil {
		return fmt.Errorf("writing the process record: %w", err)
	}
	return nil
}

// readRecord returns the record in dir, nil if there is none.
func readRecord(dir string) (*processRecord, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the process record: %w", err)
	}
	rec := &processRecord{}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("decoding the process record %s: %w", filepath.Join(dir, recordFile), err)
	}
	return rec, nil
}

// startTicks reads a live process's start time from /proc/<pid>/stat; a
// zombie counts as gone.
func startTicks(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after it start after the last ')'.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("process %d: malformed stat", pid)
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("process %d: malformed stat", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// StopInstances stops every instance process recorded under workDir, as
// the host's shutdown would: the local control plane calls it for each of
// its emulated hosts when it stops, since instance processes outlive their
// agent by design.
func StopInstances(workDir string, grace time.Duration) error {
	dirs, err := filepath.Glob(filepath.Join(workDir, "instances", "*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		rec, err := readRecord(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec != nil && rec.alive() {
			rec.stop(grace, nil)
		}
	}
	return errors.Join(errs...)
}
