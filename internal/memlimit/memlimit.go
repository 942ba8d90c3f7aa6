// Package memlimit sets the Go runtime's soft memory limit of `cafe
// manager`: a share of its container's memory limit unless told otherwise,
// so that the garbage collector works harder as the process nears what the
// kernel would kill it at, instead of letting the heap double past its live
// size first (the default GOGC=100 pacing: at 10,000 pods CAFE's live heap
// is about 115 MiB and its resident size reached 360 MiB without a limit).
package memlimit

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultRatio is the share of the container's memory limit the runtime
// aims to stay under when --memory-limit is not set. What is left covers
// what the limit does not: the binary's pages in memory (about 80 MiB of
// cafe's resident size at 10,000 pods, docs/benchmarks-scale.md).
const DefaultRatio = 0.7

// Share is the soft limit auto sets in a container limited to limit bytes.
func Share(limit int64) int64 { return int64(float64(limit) * DefaultRatio) }

// Auto is the --memory-limit value that derives the limit from the
// container's; None turns the soft limit off.
const (
	Auto = "auto"
	None = "none"
)

// cgroupLimitFiles are where the container's memory limit is read: cgroup
// v2, then v1. A value of "max" (v2) or near the int64 ceiling (v1) means
// no limit.
var cgroupLimitFiles = []string{
	"/sys/fs/cgroup/memory.max",
	"/sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// Decision is the soft limit chosen and why.
type Decision struct {
	// Bytes is the limit set; 0 when none was.
	Bytes int64
	// Source says where it came from, for the log.
	Source string
}

// Apply sets the runtime's soft memory limit from flag (a quantity such as
// "256Mi", Auto or None). The GOMEMLIMIT environment variable, which the
// runtime applied at start, wins over Auto. It returns what it decided.
func Apply(flag string) (Decision, error) {
	d, err := decide(flag, os.Getenv("GOMEMLIMIT"), readCgroupLimit)
	if err != nil {
		return Decision{}, err
	}
	if d.Bytes > 0 {
		debug.SetMemoryLimit(d.Bytes)
	}
	return d, nil
}

// decide is Apply without side effects: cgroupLimit reports the
// container's limit (0 when there is none).
func decide(flag, env string, cgroupLimit func() (int64, error)) (Decision, error) {
	switch strings.TrimSpace(flag) {
	case None:
		return Decision{Source: "--memory-limit=none"}, nil
	case "", Auto:
		if env != "" {
			return Decision{Source: "GOMEMLIMIT=" + env + " (set by the runtime)"}, nil
		}
		limit, err := cgroupLimit()
		if err != nil {
			return Decision{}, fmt.Errorf("--memory-limit=auto: reading the container's memory limit: %w", err)
		}
		if limit <= 0 {
			return Decision{Source: "no container memory limit"}, nil
		}
		return Decision{Bytes: Share(limit), Source: fmt.Sprintf("%.0f%% of the container's memory limit (%d bytes)", 100*DefaultRatio, limit)}, nil
	}
	q, err := resource.ParseQuantity(flag)
	if err != nil {
		return Decision{}, fmt.Errorf("--memory-limit %q: a quantity such as 256Mi, %q or %q: %w", flag, Auto, None, err)
	}
	if q.Sign() <= 0 {
		return Decision{}, fmt.Errorf("--memory-limit %q: must be more than 0 (%q turns the limit off)", flag, None)
	}
	return Decision{Bytes: q.Value(), Source: "--memory-limit=" + flag}, nil
}

// readCgroupLimit returns the container's memory limit in bytes, 0 when it
// has none or no cgroup file is readable (not in a container).
func readCgroupLimit() (int64, error) {
	for _, f := range cgroupLimitFiles {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return parseCgroupLimit(string(b))
	}
	return 0, nil
}

// unlimited is above any real limit: cgroup v1 reports "no limit" as the
// largest page-aligned int64.
const unlimited = math.MaxInt64 / 2

func parseCgroupLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory limit %q: %w", s, err)
	}
	if n >= unlimited {
		return 0, nil
	}
	return n, nil
}
