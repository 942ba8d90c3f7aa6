package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cafe-io/cafe/internal/loadgen"
)

func TestNextCalibrationRate(t *testing.T) {
	tests := []struct {
		name         string
		rate         int
		cores        float64
		next         int
		accept, more bool
	}{
		{name: "under the limit: kept", rate: 500, cores: 0.31, next: 500, accept: true, more: true},
		{name: "at the limit: kept", rate: 500, cores: 0.5, next: 500, accept: true, more: true},
		{name: "over: aimed at 90% of the limit, multiple of 10", rate: 500, cores: 0.8, next: 280, more: true},
		{name: "barely over: still lower", rate: 500, cores: 0.501, next: 440, more: true},
		{name: "the proportional guess would not go lower: 10 less", rate: 20, cores: 0.51, next: 10, more: true},
		{name: "far over: not below the minimum", rate: 100, cores: 50, next: calibrationMinRate, more: true},
		{name: "at the minimum and over: give up", rate: calibrationMinRate, cores: 0.9, next: calibrationMinRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, accept, more := nextCalibrationRate(tt.rate, tt.cores, trafficCPULimit)
			if next != tt.next || accept != tt.accept || more != tt.more {
				t.Fatalf("nextCalibrationRate(%d, %.3f) = %d, %v, %v; want %d, %v, %v", tt.rate, tt.cores, next, accept, more, tt.next, tt.accept, tt.more)
			}
		})
	}
}

func TestVersionAndSeconds(t *testing.T) {
	if v := versionOf("example.com/bench:v2"); v != "v2" {
		t.Fatalf("versionOf = %q", v)
	}
	if v := versionOf("localhost:5000/bench:v1-slow"); v != "v1-slow" {
		t.Fatalf("versionOf with a registry port = %q", v)
	}
	for d, want := range map[time.Duration]int{0: 0, time.Second: 1, 1500 * time.Millisecond: 2, -time.Second: -1} {
		if got := secondsAfter(d); got != want {
			t.Errorf("secondsAfter(%s) = %d, want %d", d, got, want)
		}
	}
}

func sampleTrafficReport() *trafficReport {
	sh := trafficShape(300)
	kinds := trafficKinds(sh)
	ok := func(k trafficKind, failed loadgen.Counts, before, during time.Duration) trafficResult {
		total := loadgen.Counts{Sent: 20000, OK: 20000 - failed.Non2xx - failed.ConnErrors - failed.Timeouts}
		total.Non2xx, total.ConnErrors, total.Timeouts, total.Dropped = failed.Non2xx, failed.ConnErrors, failed.Timeouts, failed.Dropped
		return trafficResult{
			Kind: k, Run: 1, Rate: 400, Completed: true,
			Wall: 21 * time.Second, ControllerDone: 22 * time.Second, GatewayDone: 24 * time.Second,
			loadOutcome: loadOutcome{
				Before: loadgen.Summary{Seconds: 10, Latency: loadgen.Latency{P99: before}},
				During: loadgen.Summary{Seconds: 30, Counts: failed, Latency: loadgen.Latency{P99: during}},
				Total:  loadgen.Summary{Seconds: 40, Counts: total},
				Errors: func() []loadgen.ErrorSample {
					if failed.Failed() == 0 {
						return nil
					}
					return []loadgen.ErrorSample{{Message: "502 Bad Gateway", Count: failed.Non2xx}, {Message: "EOF", Count: failed.ConnErrors}}
				}(),
			},
			TraefikCores: 0.31, TraefikCoresDuring: 0.34, EmulatorCores: 0.05, ClusterCores: 1.2, OtherCores: 0.1,
		}
	}
	return &trafficReport{
		Started: time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC), Duration: 9 * time.Minute,
		Shape: sh, Nodes: 100, TargetRate: 500, Rate: 400, Baseline: 10 * time.Second, Traefik: "v3.9.9",
		ManagerArgs: []string{"--gateway-api-url=http://127.0.0.1:<traefik API port>"},
		Calibration: []calibrationStepResult{{Rate: 500, TraefikCores: 0.6, P99: 8 * time.Millisecond}, {Rate: 370, TraefikCores: 0.45, P99: 7 * time.Millisecond}},
		Results: []trafficResult{
			ok(kinds[0], loadgen.Counts{}, 5*time.Millisecond, 9*time.Millisecond),
			ok(kinds[1], loadgen.Counts{Non2xx: 40, ConnErrors: 3}, 5*time.Millisecond, 12*time.Millisecond),
			ok(kinds[2], loadgen.Counts{}, 5*time.Millisecond, 10*time.Millisecond),
		},
	}
}

func TestTrafficSectionRendersTheKindsSideBySide(t *testing.T) {
	r := report{Traffic: sampleTrafficReport()}
	var b strings.Builder
	r.writeTraffic(&b)
	page := b.String()
	for _, want := range []string{
		trafficHeading + "\n",
		"| CafeDeployment, InPlaceSet mode | 1 | 400 | 20000 | **0** | 0 | 0 of 40 | 5.0 ms | 9.0 ms | 21.0 s | 24.0 s | 0.31 / 0.34 cores | 0.05 cores | 1.20 cores | 0.10 cores |",
		"| native Deployment | 1 | 400 | 20000 | **43** (non-2xx 40, conn errors 3) | 43 |",
		"| CafeDeployment, ReplicaSet mode | 1 | 400 |",
		"| 500 | 0.60 cores | 0 | 8.0 ms |",
		"the releases ran at 400 requests/s, the highest rate tried that stayed under it",
		"The native Deployment failed 43 of 20000 requests.",
		"40× `502 Bad Gateway`; 3× `EOF`",
		"CafeDeployment, InPlaceSet mode failed none of 20000 requests",
		"p99 5.0 ms before the release, 12.0 ms during it (2.4×)",
		"The gateway used at most 0.34 cores at 400 requests/s",
		"under the limit of 0.50",
		"- **native Deployment** (`deployment`): Deployment (apps/v1).",
		"strategy: RollingUpdate, maxUnavailable 30, maxSurge 0",
		"batchSize 30",
		"Wall time: CafeDeployment, InPlaceSet mode 21.0 s, native Deployment 21.0 s, CafeDeployment, ReplicaSet mode 21.0 s.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the section lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "did not finish") || strings.Contains(page, "Warning") {
		t.Errorf("every release finished undisturbed, yet:\n%s", page)
	}

	r.Traffic.Results[1].UnservedSeconds = []unservedSecond{{FromRelease: 3500 * time.Millisecond, Counts: loadgen.Counts{Sent: 500, OK: 460, Non2xx: 40}, Errors: []string{"HTTP 502"}}}
	r.Traffic.Results[1].OtherCores = 0.7
	b.Reset()
	r.writeTraffic(&b)
	if want := "**Warning:** during the deployment run other processes on this machine used 0.70 cores"; !strings.Contains(b.String(), want) {
		t.Errorf("a disturbed run is not flagged (%q):\n%s", want, b.String())
	}
	if want := "- native Deployment, run 1, +3.5 s: sent 500, ok 460, non-2xx 40 (HTTP 502)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("the unserved seconds are not listed (%q):\n%s", want, b.String())
	}
}

func TestTrafficSectionSaysWhatDidNotFinish(t *testing.T) {
	tr := sampleTrafficReport()
	tr.Results[2].Completed, tr.Results[2].Problem = false, "the pods did not settle"
	tr.Results[1].Completed, tr.Results[1].Total = false, loadgen.Summary{}
	var b strings.Builder
	report{Traffic: tr}.writeTraffic(&b)
	page := b.String()
	for _, want := range []string{
		"| native Deployment | 1 | 400 | did not finish (see below) |",
		"| 21.0 s |", // the InPlaceSet row still has its wall time
		"did not finish (see below) |  | 0.31 / 0.34 cores",
		"#### CafeDeployment, ReplicaSet mode, run 1: did not finish\n\n```\nthe pods did not settle\n```",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the section lacks %q:\n%s", want, page)
		}
	}
}

func TestPartsRan(t *testing.T) {
	all := catalog(shape{Replicas: 6})
	scenarios, own := withoutOwnPlanes(all)
	if !own.Traffic || !own.Classic || !own.IAM || len(scenarios) != len(all)-3 {
		t.Fatalf("withoutOwnPlanes: %d scenarios, own planes %+v", len(scenarios), own)
	}
	if got := partsRan(scenarios, own); strings.Join(got, ",") != strings.Join(allParts, ",") {
		t.Fatalf("everything ran: parts %v", got)
	}
	only, _ := selectScenarios(all, "traffic")
	rest, own := withoutOwnPlanes(only)
	if got := partsRan(rest, own); len(got) != 1 || got[0] != partTraffic {
		t.Fatalf("traffic alone: parts %v", got)
	}
	only, _ = selectScenarios(all, "classic")
	rest, own = withoutOwnPlanes(only)
	if got := partsRan(rest, own); len(rest) != 0 || len(got) != 1 || got[0] != partClassic {
		t.Fatalf("classic alone: parts %v", got)
	}
	only, _ = selectScenarios(all, "iam")
	rest, own = withoutOwnPlanes(only)
	if got := partsRan(rest, own); len(rest) != 0 || len(got) != 1 || got[0] != partIAM {
		t.Fatalf("iam alone: parts %v", got)
	}
	nf, _ := selectScenarios(all, "node-failure,deployment")
	if got := partsRan(nf, ownPlanes{}); strings.Join(got, ",") != "releases,node failure" {
		t.Fatalf("node failure and deployment: parts %v", got)
	}
}

const oldPage = `# Benchmarks

Generated by ` + "`make bench`" + ` on 2026-11-26 06:54 UTC; the run took 19m29s. ` + fullRunClaim + ` Rerun it.

## Machine

| CPU | AMD |

## Method

- old method

## Results

| old results |

` + "```" + `
## not a heading (in a code block)
` + "```" + `

## Node failure: heartbeat loss to pods Ready elsewhere (issue 6)

### Method

old node failure
`

func TestMergeReplacesOnlyThePartsThatRan(t *testing.T) {
	fresh := "# Benchmarks\n\nGenerated on 2026-12-04.\n\n## Machine\n\n| CPU | new |\n\n" + trafficHeading + "\n\nnew traffic\n\n### Results\n\n| t |\n"
	note := "Sections measured in a later run (traffic): x."
	got := mergeParts(oldPage, fresh, []string{partTraffic}, note)
	for _, want := range []string{
		"- old method", "| old results |", "## not a heading (in a code block)", "old node failure",
		"| CPU | AMD |", // the machine stays as the run of the other sections saw it
		trafficHeading + "\n\nnew traffic\n\n### Results\n\n| t |\n",
		"Every number was measured in the run that wrote its section",
		note,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("merged page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, fullRunClaim) || strings.Contains(got, "| CPU | new |") {
		t.Errorf("merged page keeps the full-run claim or takes the new machine:\n%s", got)
	}
	if !strings.HasPrefix(got, "# Benchmarks\n\nGenerated by `make bench` on 2026-11-26") {
		t.Errorf("merged page lost its preamble:\n%s", got)
	}
	if i, j := strings.Index(got, "old node failure"), strings.Index(got, trafficHeading); i > j {
		t.Errorf("the new part is not appended after the others:\n%s", got)
	}

	// A second traffic run replaces the first one's section and note, in
	// place.
	fresh2 := strings.Replace(fresh, "new traffic", "newer traffic", 1)
	note2 := "Sections measured in a later run (traffic): y."
	again := mergeParts(got, fresh2, []string{partTraffic}, note2)
	if strings.Contains(again, "new traffic\n") || strings.Contains(again, note) || !strings.Contains(again, "newer traffic") || !strings.Contains(again, note2) {
		t.Errorf("second merge:\n%s", again)
	}
	if strings.Count(again, trafficHeading) != 1 || strings.Count(again, "## Node failure") != 1 {
		t.Errorf("second merge duplicated sections:\n%s", again)
	}

	// The releases part replaces every release section, in place, and
	// keeps the rest.
	freshReleases := "# Benchmarks\n\nx\n\n## Machine\n\nm\n\n## Method\n\n- new method\n\n## Results\n\n| new |\n"
	rel := mergeParts(again, freshReleases, []string{partReleases}, "Sections measured in a later run (releases): z.")
	if strings.Contains(rel, "old method") || strings.Contains(rel, "old results") || !strings.Contains(rel, "- new method") || !strings.Contains(rel, "newer traffic") || !strings.Contains(rel, "old node failure") {
		t.Errorf("releases merge:\n%s", rel)
	}
	if strings.Index(rel, "- new method") > strings.Index(rel, "## Node failure") {
		t.Errorf("the releases part moved:\n%s", rel)
	}
}
