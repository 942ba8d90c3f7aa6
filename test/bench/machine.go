package main

import (
	"bufio"
	"debug/buildinfo"
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
	// Source is what bin/cafe was built from.
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
		Source:     cafeBuild(repoRoot),
	}
}

// cafeBuild says what bin/cafe — the manager being measured — was built
// from, as the Go toolchain stamped it into the binary.
func cafeBuild(repoRoot string) string {
	path := filepath.Join(repoRoot, "bin", "cafe")
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("bin/cafe (no build information: %v)", err)
	}
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	rev := vcs["vcs.revision"]
	if rev == "" {
		// Built with -buildvcs=false: `make bench` built it just before
		// this run, so the working tree says what it was built from.
		return "bin/cafe built (by `make build`, just before the run) from " + workingTree(repoRoot)
	}
	out := fmt.Sprintf("bin/cafe built from commit %s (%s)", rev[:min(len(rev), 12)], vcs["vcs.time"])
	if vcs["vcs.modified"] == "true" {
		out += " with uncommitted changes in the working tree"
	}
	return out
}

// workingTree names the checked-out commit and counts the changed files
// that go into bin/cafe (the benchmark's own files excluded).
func workingTree(repoRoot string) string {
	commit, err := exec.Command("git", "-C", repoRoot, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "a tree without git metadata"
	}
	out := "commit " + strings.TrimSpace(string(commit))
	status, err := exec.Command("git", "-C", repoRoot, "status", "--porcelain", "--", ".", ":!test/bench", ":!docs", ":!Makefile", ":!README.md").Output()
	if err == nil && strings.TrimSpace(string(status)) != "" {
		out += fmt.Sprintf(" with uncommitted changes to %d paths", strings.Count(strings.TrimSpace(string(status)), "\n")+1)
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
