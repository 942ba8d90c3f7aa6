package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// machine describes where the benchmark ran.
type machine struct {
	CPUModel string
	CPUs     int
	MemTotal string
	Kernel   string
	Go       string
	// Versions of the control-plane components, as pinned in hack/tools.
	Etcd, Kubernetes, Kwok string
	// Source is the commit CAFE was built from, and whether the working
	// tree had changes.
	Source string
}

func describeMachine(repoRoot string) machine {
	return machine{
		CPUModel:   firstValue("/proc/cpuinfo", "model name", "unknown CPU"),
		CPUs:       runtime.NumCPU(),
		MemTotal:   memTotal(),
		Kernel:     strings.TrimSpace(readOr("/proc/sys/kernel/osrelease", "unknown")),
		Go:         runtime.Version(),
		Etcd:       pinnedVersion(repoRoot, "etcd", "go.etcd.io/etcd/server/v3"),
		Kubernetes: pinnedVersion(repoRoot, "kube", "k8s.io/kubernetes"),
		Kwok:       pinnedVersion(repoRoot, "kwok", "sigs.k8s.io/kwok"),
		Source:     sourceState(repoRoot),
	}
}

// sourceState names the commit of the repository and counts the files
// changed in its working tree (the benchmark's own files excluded).
func sourceState(repoRoot string) string {
	commit, err := exec.Command("git", "-C", repoRoot, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "built from a tree without git metadata"
	}
	out := "commit " + strings.TrimSpace(string(commit))
	status, err := exec.Command("git", "-C", repoRoot, "status", "--porcelain", "--", ".", ":!test/bench", ":!docs/benchmarks.md", ":!Makefile").Output()
	if err != nil {
		return out
	}
	if changed := strings.TrimSpace(string(status)); changed != "" {
		out += fmt.Sprintf(" with uncommitted changes to %d paths (`git status`)", strings.Count(changed, "\n")+1)
	}
	return out
}

func readOr(path, def string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(raw)
}

// firstValue returns the value of the first "key : value" line of a /proc
// file.
func firstValue(path, key, def string) string {
	for line := range strings.SplitSeq(readOr(path, ""), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return def
}

// memTotal is MemTotal of /proc/meminfo in GiB.
func memTotal() string {
	v := strings.TrimSuffix(firstValue("/proc/meminfo", "MemTotal", ""), " kB")
	kib, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", kib/(1<<20))
}

// pinnedVersion reads a module's version from hack/tools/<dir>/go.mod.
func pinnedVersion(repoRoot, dir, module string) string {
	f, err := os.Open(filepath.Join(repoRoot, "hack", "tools", dir, "go.mod"))
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	return "unknown"
}
