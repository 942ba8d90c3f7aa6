package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// cpuClock converts the clock ticks /proc reports into seconds.
type cpuClock struct{ ticksPerSecond float64 }

// newCPUClock asks getconf for the kernel's USER_HZ; 100 is what Linux uses
// on every common architecture, so it is the fallback.
func newCPUClock(ctx context.Context) cpuClock {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if hz, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && hz > 0 {
			return cpuClock{ticksPerSecond: hz}
		}
	}
	return cpuClock{ticksPerSecond: 100}
}

// cpuSeconds is the user plus system CPU time a process has used so far
// (utime + stime of /proc/<pid>/stat: every thread, no reaped children).
func (c cpuClock) cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields are counted from the last ')'.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, fmt.Errorf("parsing /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(raw[end+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks float64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing /proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return ticks / c.ticksPerSecond, nil
}

// peakRSS is the process's resident set high-water mark (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading memory of process %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing VmHWM of process %d: %w", pid, err)
		}
		return kib * 1024, nil
	}
	return 0, fmt.Errorf("process %d reports no VmHWM", pid)
}

// resetPeakRSS sets the process's VmHWM back to its current RSS (writing 5
// to clear_refs, Linux 4.0+), so the next peakRSS covers only what follows.
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting the peak RSS of process %d: %w", pid, err)
	}
	return nil
}

// processName is the base name of a process's executable, from the first
// argument of /proc/<pid>/cmdline (comm is cut at 15 characters, too short
// for kube-controller-manager).
func processName(pid int) (string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", fmt.Errorf("reading the command line of process %d: %w", pid, err)
	}
	argv0, _, _ := bytes.Cut(raw, []byte{0})
	return filepath.Base(string(argv0)), nil
}

// machineBusySeconds is the CPU time every CPU of the machine has spent
// not idle since boot (user, nice, system, irq, softirq, steal of the
// "cpu" line of /proc/stat), summed over CPUs.
func (c cpuClock) machineBusySeconds() (float64, error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("parsing /proc/stat: unexpected first line %q", line)
	}
	var ticks float64
	// user nice system idle iowait irq softirq steal: skip idle and iowait.
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return 0, fmt.Errorf("parsing /proc/stat: %w", err)
		}
		ticks += v
	}
	return ticks / c.ticksPerSecond, nil
}
