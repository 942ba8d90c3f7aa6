package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/devenv"
)

// What the classic scenario reads of the processes: the CPU time of every
// process of the run by component, and of each classic host its agent and
// the instance processes the agent started (its children: the agent
// starts each instance itself and reaps it when it stops, so the CPU of
// the instances it stopped is in the agent's cutime + cstime).

// procStat is what the classic scenario reads of /proc/<pid>/stat.
type procStat struct {
	PPID int
	// Self is utime + stime, Children cutime + cstime (children waited
	// for), both in clock ticks.
	Self, Children float64
}

// parseStat reads the parent, utime, stime, cutime and cstime of a
// /proc/<pid>/stat line.
func parseStat(raw []byte) (procStat, error) {
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields are counted from the last ')'.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("no command name")
	}
	// fields[0] is field 3 (state), fields[1] the parent (field 4); utime,
	// stime, cutime and cstime are fields 14 to 17.
	fields := strings.Fields(string(raw[end+1:]))
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("%d fields", len(fields))
	}
	var s procStat
	var err error
	if s.PPID, err = strconv.Atoi(fields[1]); err != nil {
		return s, err
	}
	var v [4]float64
	for i := range v {
		if v[i], err = strconv.ParseFloat(fields[11+i], 64); err != nil {
			return s, err
		}
	}
	s.Self, s.Children = v[0]+v[1], v[2]+v[3]
	return s, nil
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s, err := parseStat(raw)
	if err != nil {
		return s, fmt.Errorf("parsing /proc/%d/stat: %w", pid, err)
	}
	return s, nil
}

// memory is what /proc/<pid>/status says of a process's resident memory,
// in bytes: now (VmRSS) and at most since it started or its peak was last
// reset (VmHWM).
type memory struct{ RSS, Peak int64 }

// parseMemory reads VmRSS and VmHWM of a /proc/<pid>/status.
func parseMemory(raw string) (memory, error) {
	var m memory
	found := 0
	for line := range strings.SplitSeq(raw, "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("parsing %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kib * 1024
		} else {
			m.Peak = kib * 1024
		}
		found++
	}
	if found < 2 {
		return m, fmt.Errorf("no VmRSS and VmHWM")
	}
	return m, nil
}

// parsePSS reads the proportional set size (Pss: resident pages, each
// shared page divided among the processes that map it) of a
// /proc/<pid>/smaps_rollup, in bytes: what the processes' memory sums to,
// where RSS counts their shared binary once per process.
func parsePSS(raw string) (int64, error) {
	for line := range strings.SplitSeq(raw, "\n") {
		rest, ok := strings.CutPrefix(line, "Pss:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing Pss: %w", err)
		}
		return kib * 1024, nil
	}
	return 0, fmt.Errorf("no Pss")
}

func readPSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	return parsePSS(string(raw))
}

func readMemory(pid int) (memory, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	m, err := parseMemory(string(raw))
	if err != nil {
		return m, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

// childrenOf lists, by parent, the processes whose parent is one of
// parents (a scan of /proc; a process that exits during it is skipped).
func childrenOf(parents map[int]bool) (map[int][]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(pid)
		if err != nil {
			continue
		}
		if parents[s.PPID] {
			out[s.PPID] = append(out[s.PPID], pid)
		}
	}
	return out, nil
}

// hostSample is one classic host's processes at one time.
type hostSample struct {
	// AgentCPU is the agent's own CPU time (s).
	AgentCPU float64
	// InstancesCPU is the CPU time (s) of every instance process the agent
	// started so far: those it reaped (its cutime + cstime) and those
	// running (their utime + stime).
	InstancesCPU float64
	// Instances are the running instance processes; InstancesRSS their
	// resident memory summed, InstancesPSS their proportional set sizes
	// summed (shared pages split among them), InstancePeak the largest
	// VmHWM of one.
	Instances    int
	InstancesRSS int64
	InstancesPSS int64
	InstancePeak int64
}

// procSample is the CPU time of every process of the classic scenario at
// one time.
type procSample struct {
	At time.Time
	// CPU is by component: the control plane's children by component name
	// (etcd, kube-apiserver, …, traefik, pod-emulator, registry, each
	// agent-<host>), cafe manager (cafeProcess) and this process
	// (benchProcess), in seconds.
	CPU map[string]float64
	// Hosts are the classic hosts' agents and instances, by host.
	Hosts map[string]hostSample
	// Ours is the CPU time of every process of the run (instances
	// included); Machine every CPU's non-idle time.
	Ours, Machine float64
}

// classicComponents are the control plane's own children the classic
// scenario reads by name (the agents come on top).
var classicComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
	controlplane.TraefikComponent, controlplane.PodEmulatorComponent, controlplane.RegistryComponent}

// controlPlaneComponents make up "the control plane" on the classic page:
// the cluster's own processes, not the gateway, the pod emulator, CAFE or
// the hosts.
var controlPlaneComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", controlplane.RegistryComponent}

// sampleProcs reads every process of the run.
func sampleProcs(c *cluster, hosts []devenv.ClassicHost) (procSample, error) {
	tick := c.clock.ticksPerSecond
	s := procSample{At: time.Now(), CPU: map[string]float64{}, Hosts: map[string]hostSample{}}
	cpuOf := func(pid int) (procStat, error) {
		st, err := readStat(pid)
		if err != nil {
			return st, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
		}
		return st, nil
	}
	for _, name := range classicComponents {
		pid, err := c.cp.PID(name)
		if err != nil {
			continue // not every control plane runs every part
		}
		st, err := cpuOf(pid)
		if err != nil {
			return s, err
		}
		s.CPU[name] = st.Self / tick
	}
	agents := map[int]string{}
	parents := map[int]bool{}
	for _, h := range hosts {
		pid, err := c.cp.PID(devenv.AgentComponent(h.Name))
		if err != nil {
			return s, err
		}
		agents[pid], parents[pid] = h.Name, true
	}
	children, err := childrenOf(parents)
	if err != nil {
		return s, err
	}
	for pid, host := range agents {
		st, err := cpuOf(pid)
		if err != nil {
			return s, err
		}
		hs := hostSample{AgentCPU: st.Self / tick, InstancesCPU: st.Children / tick}
		for _, child := range children[pid] {
			cst, err := readStat(child)
			if err != nil {
				continue // exited meanwhile: its time is in the agent's next cutime
			}
			hs.InstancesCPU += cst.Self / tick
			hs.Instances++
			if m, err := readMemory(child); err == nil {
				hs.InstancesRSS += m.RSS
				hs.InstancePeak = max(hs.InstancePeak, m.Peak)
			}
			if pss, err := readPSS(child); err == nil {
				hs.InstancesPSS += pss
			}
		}
		s.Hosts[host] = hs
		s.CPU[devenv.AgentComponent(host)] = hs.AgentCPU
		s.Ours += hs.InstancesCPU
	}
	for _, pid := range c.cp.PIDs() {
		st, err := cpuOf(pid)
		if err != nil {
			return s, err
		}
		s.Ours += st.Self / tick
	}
	for name, pid := range map[string]int{cafeProcess: c.manager.pid(), benchProcess: os.Getpid()} {
		st, err := cpuOf(pid)
		if err != nil {
			return s, err
		}
		s.CPU[name] = st.Self / tick
		s.Ours += s.CPU[name]
	}
	if s.Machine, err = c.clock.machineBusySeconds(); err != nil {
		return s, err
	}
	return s, nil
}

// hostUsage is one classic host's share of a release: what its agent and
// its instances used from the release's start to its end.
type hostUsage struct {
	Host, Zone, Address string
	// AgentCPU is the agent's CPU time (s), AgentPeakRSS its VmHWM over
	// the release (reset at its start).
	AgentCPU     float64
	AgentPeakRSS int64
	// InstancesCPU is the instance processes' CPU time (s): serving the
	// load, stopping and starting.
	InstancesCPU float64
	// Instances, InstancesRSS, InstancesPSS and InstancePeakRSS are the
	// running instance processes at the end, their resident memory summed
	// (RSS and PSS) and the largest peak of one.
	Instances       int
	InstancesRSS    int64
	InstancesPSS    int64
	InstancePeakRSS int64
}

// hostUsages is each host's usage between two samples, in the hosts'
// order; peaks are the agents' VmHWM by host.
func hostUsages(hosts []devenv.ClassicHost, from, to procSample, peaks map[string]int64) []hostUsage {
	out := make([]hostUsage, 0, len(hosts))
	for _, h := range hosts {
		a, b := from.Hosts[h.Name], to.Hosts[h.Name]
		out = append(out, hostUsage{
			Host: h.Name, Zone: h.Zone, Address: h.Address,
			AgentCPU: max(b.AgentCPU-a.AgentCPU, 0), AgentPeakRSS: peaks[h.Name],
			InstancesCPU: max(b.InstancesCPU-a.InstancesCPU, 0),
			Instances:    b.Instances, InstancesRSS: b.InstancesRSS, InstancesPSS: b.InstancesPSS, InstancePeakRSS: b.InstancePeak,
		})
	}
	return out
}

// hostTotal is the hosts' usage together.
type hostTotal struct {
	AgentCPU, InstancesCPU float64
	// MostAgentRSS is the largest peak RSS of one agent.
	MostAgentRSS               int64
	Instances                  int
	InstancesRSS, InstancesPSS int64
}

// hostTotals sums the hosts' usage: CPU, instances and their memory
// summed, the agents' peak RSS as the largest of one.
func hostTotals(hosts []hostUsage) hostTotal {
	var t hostTotal
	for _, h := range hosts {
		t.AgentCPU += h.AgentCPU
		t.InstancesCPU += h.InstancesCPU
		t.MostAgentRSS = max(t.MostAgentRSS, h.AgentPeakRSS)
		t.Instances += h.Instances
		t.InstancesRSS += h.InstancesRSS
		t.InstancesPSS += h.InstancesPSS
	}
	return t
}

// cpuDelta is the CPU time (s) each component used between two samples.
func cpuDelta(from, to procSample) map[string]float64 {
	out := map[string]float64{}
	for name, v := range to.CPU {
		out[name] = max(v-from.CPU[name], 0)
	}
	return out
}

// sumOf adds the named entries of m.
func sumOf(m map[string]float64, names []string) float64 {
	var n float64
	for _, name := range names {
		n += m[name]
	}
	return n
}

// agentName is the component an agent's CPU is under.
func agentName(host string) string { return devenv.AgentComponent(host) }
