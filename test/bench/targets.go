package main

import (
	"fmt"
	"time"
)

// The targets for an InPlaceSet release, measured against the
// native Deployment of the same run.
const (
	targetWallRatio    = 0.8
	targetWritesPerPod = 8.0
	targetCafeShare    = 0.15
	targetRSSBytes     = 200 << 20
)

// verdict is one target checked against one scenario.
type verdict struct {
	Scenario string
	Target   string
	Measured string
	Pass     bool
	// Gap says by how much a missed target was missed.
	Gap string
}

func (v verdict) result() string {
	if v.Pass {
		return "PASS"
	}
	return "MISS: " + v.Gap
}

// checkTargets checks the InPlaceSet scenario (the targets are its); the wall-time
// target needs the Deployment of the same run too.
func checkTargets(aggs []aggregate, lifetimePeakRSS int64) []verdict {
	var native *aggregate
	for i := range aggs {
		if aggs[i].isDeployment() && aggs[i].completed() {
			native = &aggs[i]
		}
	}
	var out []verdict
	for _, a := range aggs {
		if !a.isInPlaceSet() {
			continue
		}
		key := a.Scenario.Key
		if !a.completed() {
			out = append(out, verdict{Scenario: key, Target: "all targets", Measured: "the release did not finish", Gap: "no measurement; see the scenario's problem below"})
			continue
		}
		if native != nil {
			out = append(out, wallVerdict(key, a.Wall, native.Wall))
		}
		out = append(out, writesVerdict(key, a.WritesPerPod), shareVerdict(key, a), rssVerdict(key, max(a.PeakRSS, lifetimePeakRSS)))
	}
	return out
}

func wallVerdict(key string, wall, native time.Duration) verdict {
	ratio := wall.Seconds() / native.Seconds()
	limit := time.Duration(targetWallRatio * float64(native))
	return verdict{
		Scenario: key,
		Target:   fmt.Sprintf("wall time ≤ %.1f× the Deployment's", targetWallRatio),
		Measured: fmt.Sprintf("%s vs %s = %.2f×", seconds(wall), seconds(native), ratio),
		Pass:     ratio <= targetWallRatio,
		Gap:      fmt.Sprintf("%.2f× instead of ≤ %.1f×: %s over the %s limit", ratio, targetWallRatio, seconds(wall-limit), seconds(limit)),
	}
}

func writesVerdict(key string, perPod float64) verdict {
	return verdict{
		Scenario: key,
		Target:   fmt.Sprintf("≤ %.0f successful API writes per pod, all-in", targetWritesPerPod),
		Measured: fmt.Sprintf("%.2f", perPod),
		Pass:     perPod <= targetWritesPerPod,
		Gap:      fmt.Sprintf("%.2f writes per pod over (+%.0f%%)", perPod-targetWritesPerPod, 100*(perPod/targetWritesPerPod-1)),
	}
}

func shareVerdict(key string, a aggregate) verdict {
	return verdict{
		Scenario: key,
		Target:   fmt.Sprintf("CAFE ≤ %.0f%% of the control plane's CPU during the release", 100*targetCafeShare),
		Measured: fmt.Sprintf("%.1f%% (%.1f s of %.1f s)", 100*a.CafeShare, a.CafeCPU, a.ControlPlaneCPU),
		Pass:     a.CafeShare <= targetCafeShare,
		Gap:      fmt.Sprintf("%.1f percentage points over", 100*(a.CafeShare-targetCafeShare)),
	}
}

func rssVerdict(key string, rss int64) verdict {
	return verdict{
		Scenario: key,
		Target:   "CAFE's peak RSS ≤ 200 MiB",
		Measured: mib(rss),
		Pass:     rss <= targetRSSBytes,
		Gap:      fmt.Sprintf("%s over", mib(rss-targetRSSBytes)),
	}
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
