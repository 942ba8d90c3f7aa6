package main

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane/kwokstages"
)

// completedRun is a finished release of wall seconds, with CAFE's CPU and
// the watch stream's findings.
func completedRun(wall, cafeCPU float64, inv invariants) runResult {
	return runResult{
		Completed:  true,
		Pods:       1000,
		Wall:       time.Duration(wall * float64(time.Second)),
		Delta:      delta{CPU: counts[string]{cafeProcess: cafeCPU, "kube-apiserver": 40}, API: apiWrites{OK: counts[writeKey]{}}},
		Invariants: inv,
	}
}

func verdictsOf(vs []verdict) map[string]bool {
	out := map[string]bool{}
	for _, v := range vs {
		out[v.Scenario+": "+v.Target] = v.Pass
	}
	return out
}

func TestTargetsCompareTheInPlaceReleaseWithCloneSetAndBoundCAFEDuringOthersReleases(t *testing.T) {
	g := NewWithT(t)
	s := shape{Replicas: 1000, BatchSize: 100, MaxUnavailable: 100, Zones: []string{"zone-a"}}
	held := invariants{Checked: true, MinReady: 900}
	broken := invariants{Checked: true, MinReady: 900, Lossless: []string{"[lossless] deleted while listed ready"}}
	aggs := []aggregate{
		aggregateRuns(scenario{Key: "inplaceset", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet}}, []runResult{completedRun(40, 4, held)}),
		aggregateRuns(scenario{Key: "deployment", Workload: deployment{shape: s}}, []runResult{completedRun(30, 0.3, broken)}),
		aggregateRuns(scenario{Key: cloneSetKey, Workload: cloneSet{shape: s}}, []runResult{completedRun(110, 0.9, broken)}),
	}
	got := verdictsOf(checkTargets(aggs, 100<<20, limitsFor(kwokstages.Delays{}, false)))
	g.Expect(got).To(HaveKeyWithValue("inplaceset: wall time ≤ 0.4× OpenKruise CloneSet's", true), "40 s against 110 s is 0.36×")
	g.Expect(got).To(HaveKeyWithValue("inplaceset: wall time ≤ 0.8× the Deployment's", false), "40 s against 30 s")
	g.Expect(got).To(HaveKeyWithValue("inplaceset: lossless and water level held in every run (watch stream)", true))
	foreign := "CAFE's CPU while another controller releases pods CAFE does not manage ≤ 0.5 s"
	g.Expect(got).To(HaveKeyWithValue("deployment: "+foreign, true), "0.3 s")
	g.Expect(got).To(HaveKeyWithValue(cloneSetKey+": "+foreign, false), "0.9 s")

	// A violation in any run fails the invariant target.
	aggs[0] = aggregateRuns(aggs[0].Scenario, []runResult{completedRun(40, 4, held), completedRun(41, 4, broken)})
	got = verdictsOf(checkTargets(aggs, 100<<20, limitsFor(kwokstages.Delays{}, false)))
	g.Expect(got).To(HaveKeyWithValue("inplaceset: lossless and water level held in every run (watch stream)", false))
}

// The scale row of issue 14 bounds CPU share, memory and the invariants,
// not writes per pod: all-in they count 1,000 nodes' heartbeats.
func TestTheScaleVariantChecksItsOwnLimitsOnly(t *testing.T) {
	g := NewWithT(t)
	s := shape{Replicas: 1000, BatchSize: 100, MaxUnavailable: 100, Zones: []string{"zone-a"}}
	run := completedRun(40, 4, invariants{Checked: true, MinReady: 900})
	run.Delta.API.OK[writeKey{Verb: "PATCH", Resource: "pods"}] = 9000 // 9 writes per pod
	aggs := []aggregate{aggregateRuns(scenario{Key: "inplaceset", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet}}, []runResult{run})}
	writes := "inplaceset: ≤ 7 successful API writes per pod, all-in"

	got := verdictsOf(checkTargets(aggs, 200<<20, limitsFor(kwokstages.Delays{}, false)))
	g.Expect(got).To(HaveKeyWithValue(writes, false), "9 writes per pod against 7")
	g.Expect(got).To(HaveKeyWithValue("inplaceset: CAFE's peak RSS ≤ 150 MiB", false))

	got = verdictsOf(checkTargets(aggs, 200<<20, limitsFor(kwokstages.Delays{}, true)))
	g.Expect(got).NotTo(HaveKey(writes))
	g.Expect(got).To(HaveKeyWithValue("inplaceset: CAFE's peak RSS ≤ 300 MiB", true))
	g.Expect(got).To(HaveKeyWithValue("inplaceset: CAFE ≤ 15% of the control plane's CPU during the release", true), "4 s of 40")
}

// cpuRun is a finished release of 1000 pods in wall seconds, whose control
// plane spent cpu seconds while the machine was busy machine seconds.
func cpuRun(wall, cpu, machine float64) runResult {
	r := completedRun(wall, 0, invariants{})
	r.Delta.Window = r.Wall
	r.Delta.CPU = counts[string]{"kube-apiserver": cpu, machineBusy: machine}
	return r
}

func TestAFastRollbackSlowerThanItsTargetIsExplainedByTheCPUItSpentPerPod(t *testing.T) {
	g := NewWithT(t)
	s := shape{Replicas: 1000, BatchSize: 100, MaxUnavailable: 100, Zones: []string{"zone-a"}}
	grouped := aggregateRuns(scenario{Key: "inplaceset", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet}}, []runResult{cpuRun(40, 70, 78)})
	fast := aggregateRuns(scenario{Key: "app-rollback", Workload: appRollback{shape: s}}, []runResult{cpuRun(36, 63, 70)})

	lines := rollbackWhyLines(fast, grouped, 2)
	g.Expect(lines).To(HaveLen(2))
	g.Expect(lines[0]).To(ContainSubstring("36.0 s against the grouped release's 40.0 s: 27.8 pods released per second against 25.0"))
	// 63 s over 36 s is 1.75 cores; the 20 s limit allows 35 s of CPU for
	// 1000 pods: 35 ms per pod instead of 63.
	g.Expect(lines[1]).To(ContainSubstring("busy 1.94 of its 2 cores (97%)"))
	g.Expect(lines[1]).To(ContainSubstring("63.0 ms of CPU per pod, the grouped release 70.0 ms"))
	g.Expect(lines[1]).To(ContainSubstring("finishing within the 20.0 s limit allows 35.0 ms per pod: 44% less than now"))

	// A rollback within its target needs no explanation.
	g.Expect(rollbackWhyLines(aggregateRuns(fast.Scenario, []runResult{cpuRun(19, 40, 38)}), grouped, 2)).To(BeEmpty())
}

func TestTheReplicaSetModesMissIsExplainedAgainstItsOwnLimit(t *testing.T) {
	g := NewWithT(t)
	s := shape{Replicas: 1000, BatchSize: 100, MaxUnavailable: 100, Zones: []string{"zone-a"}}
	aggs := []aggregate{
		aggregateRuns(scenario{Key: "replicaset", Title: "ReplicaSet mode", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeReplicaSet}}, []runResult{cpuRun(40, 75, 78)}),
		aggregateRuns(scenario{Key: "deployment", Workload: deployment{shape: s}}, []runResult{cpuRun(20, 40, 39)}),
	}
	r := report{Machine: machine{CPUs: 2}, Aggregates: aggs, Verdicts: checkTargets(aggs, 100<<20, limitsFor(kwokstages.Delays{}, false))}
	var b strings.Builder
	r.writeWhy(&b)
	// 1.5× the Deployment's 20 s, not the InPlaceSet's 0.8×.
	g.Expect(b.String()).To(ContainSubstring("finishing within the 30.0 s limit"))
}

// Each fast rollback is measured against the grouped release that drains
// the same way: the gated app's against the gated InPlaceSet release, the
// app whose endpoints CAFE writes against the release with spec.endpoints.
func TestEachFastRollbackIsMeasuredAgainstTheGroupedReleaseOfItsProtocol(t *testing.T) {
	g := NewWithT(t)
	s := shape{Replicas: 1000, BatchSize: 100, MaxUnavailable: 100, Zones: []string{"zone-a"}}
	inPlace := cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet}
	owned := inPlace
	owned.ownEndpoints = true
	aggs := []aggregate{
		aggregateRuns(scenario{Key: appRollbackEndpointsKey, Workload: appRollback{shape: s, ownEndpoints: true}}, []runResult{completedRun(12, 1, invariants{})}),
		aggregateRuns(scenario{Key: "app-rollback", Workload: appRollback{shape: s}}, []runResult{completedRun(19, 1, invariants{})}),
		aggregateRuns(scenario{Key: inPlaceEndpointsKey, Workload: owned}, []runResult{completedRun(20, 1, invariants{})}),
		aggregateRuns(scenario{Key: "inplaceset", Workload: inPlace}, []runResult{completedRun(40, 1, invariants{})}),
	}
	measured := map[string]verdict{}
	for _, v := range checkTargets(aggs, 100<<20, limitsFor(kwokstages.Delays{}, false)) {
		if strings.HasPrefix(v.Scenario, "app-rollback") {
			measured[v.Scenario] = v
		}
	}
	g.Expect(measured).To(HaveLen(2))
	g.Expect(measured["app-rollback"].Measured).To(Equal("19.0 s vs 40.0 s = 0.47×"))
	g.Expect(measured["app-rollback"].Pass).To(BeTrue())
	g.Expect(measured[appRollbackEndpointsKey].Measured).To(Equal("12.0 s vs 20.0 s = 0.60×"))
	g.Expect(measured[appRollbackEndpointsKey].Target).To(ContainSubstring("with spec.endpoints"))
	g.Expect(measured[appRollbackEndpointsKey].Pass).To(BeFalse())
}
