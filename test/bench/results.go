package main

import (
	"slices"
	"strings"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Derived figures of one release.

func (r runResult) writesPerPod() float64 { return r.Delta.API.OK.total() / float64(r.Pods) }

// backgroundWrites are writes that happen whether or not anything is
// released: the simulated kubelets' node leases and node status.
func (r runResult) backgroundWrites() float64 {
	var n float64
	for k, v := range r.Delta.API.OK {
		if isBackground(k.Resource) {
			n += v
		}
	}
	return n
}

func isBackground(resource string) bool {
	return strings.HasPrefix(resource, "leases.coordination.k8s.io") || resource == "nodes/status" || resource == "nodes"
}

func (r runResult) writesPerPodWithoutBackground() float64 {
	return (r.Delta.API.OK.total() - r.backgroundWrites()) / float64(r.Pods)
}

// controlPlaneCPU is the CPU time of etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok: not the workload
// controllers that run beside them (CAFE, kruise-manager).
func (r runResult) controlPlaneCPU() float64 {
	var n float64
	for name, v := range r.Delta.CPU {
		if name != cafeProcess && name != kruiseProcess && name != benchProcess && name != machineBusy {
			n += v
		}
	}
	return n
}

// otherCPU is the CPU time the machine spent on processes outside the
// benchmark (other work on a shared machine), which competes with it.
func (r runResult) otherCPU() float64 {
	ours := r.releaseCPU() + r.Delta.CPU[benchProcess]
	return max(r.Delta.CPU[machineBusy]-ours, 0)
}

// otherLoad is otherCPU in cores on average between the snapshots.
func (r runResult) otherLoad() float64 { return r.otherCPU() / r.Delta.Window.Seconds() }

func (r runResult) cafeCPU() float64 { return r.Delta.CPU[cafeProcess] }

// releaseCPU is the CPU time the release itself cost: the control plane
// and the workload controllers beside it (CAFE, kruise-manager), not the
// benchmark's own watches.
func (r runResult) releaseCPU() float64 {
	return r.controlPlaneCPU() + r.cafeCPU() + r.Delta.CPU[kruiseProcess]
}

// cpuPerPod is releaseCPU per pod released, in milliseconds.
func (r runResult) cpuPerPod() float64 { return 1000 * r.releaseCPU() / float64(r.Pods) }

// busyCores is how many of the machine's cores were busy, on average,
// between the snapshots (every process, the benchmark's included).
func (r runResult) busyCores() float64 { return r.Delta.CPU[machineBusy] / r.Delta.Window.Seconds() }

// cafeShare is CAFE's CPU time as a fraction of the control plane's.
func (r runResult) cafeShare() float64 {
	if cp := r.controlPlaneCPU(); cp > 0 {
		return r.cafeCPU() / cp
	}
	return 0
}

// aggregate is one scenario over its runs: medians of the completed ones.
type aggregate struct {
	Scenario scenario
	Runs     []runResult
	// Typical is the completed run with the median wall time; the
	// breakdowns on the page are its.
	Typical *runResult

	Wall, ControllerDone                        time.Duration
	WritesPerPod, WritesPerPodWithoutBackground float64
	CafeCPU, ControlPlaneCPU, CafeShare         float64
	PeakRSS                                     int64
}

func aggregateRuns(s scenario, runs []runResult) aggregate {
	a := aggregate{Scenario: s, Runs: runs}
	var done []runResult
	for _, r := range runs {
		if r.Completed {
			done = append(done, r)
		}
	}
	if len(done) == 0 {
		return a
	}
	slices.SortFunc(done, func(x, y runResult) int { return int(x.Wall - y.Wall) })
	a.Typical = &done[(len(done)-1)/2]
	a.Wall = time.Duration(median(done, func(r runResult) float64 { return float64(r.Wall) }))
	a.ControllerDone = time.Duration(median(done, func(r runResult) float64 { return float64(r.ControllerDone) }))
	a.WritesPerPod = median(done, runResult.writesPerPod)
	a.WritesPerPodWithoutBackground = median(done, runResult.writesPerPodWithoutBackground)
	a.CafeCPU = median(done, runResult.cafeCPU)
	a.ControlPlaneCPU = median(done, runResult.controlPlaneCPU)
	a.CafeShare = median(done, runResult.cafeShare)
	a.PeakRSS = int64(median(done, func(r runResult) float64 { return float64(r.CafePeakRSS) }))
	return a
}

// median of f over runs (the mean of the two middle values for an even
// count).
func median(runs []runResult, f func(runResult) float64) float64 {
	vs := make([]float64, 0, len(runs))
	for _, r := range runs {
		vs = append(vs, f(r))
	}
	slices.Sort(vs)
	n := len(vs)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// worstInvariants is the invariants of the completed run with the most
// violations (the first run when none was checked).
func (a aggregate) worstInvariants() invariants {
	var worst invariants
	for _, r := range a.Runs {
		inv := r.Invariants
		if !inv.Checked {
			continue
		}
		if !worst.Checked || inv.worseThan(worst) {
			worst = inv
		}
	}
	return worst
}

func (a aggregate) completed() bool { return a.Typical != nil }

func (a aggregate) isCafe() bool {
	_, ok := a.Scenario.Workload.(cafeDeployment)
	return ok
}

// isInPlaceSet: the scenario most of the targets are about.
func (a aggregate) isInPlaceSet() bool {
	w, ok := a.Scenario.Workload.(cafeDeployment)
	return ok && w.mode == cafev1alpha1.PodSetTypeInPlaceSet
}

func (a aggregate) isReplicaSetMode() bool {
	w, ok := a.Scenario.Workload.(cafeDeployment)
	return ok && w.mode == cafev1alpha1.PodSetTypeReplicaSet
}

func (a aggregate) isAppRollback() bool {
	_, ok := a.Scenario.Workload.(appRollback)
	return ok
}

// writesEndpoints: the scenario's workload writes its Service's
// EndpointSlices (CAFE with spec.endpoints), so its pods drain without
// gate writes.
func (a aggregate) writesEndpoints() bool { return writesEndpoints(a.Scenario.Workload, "") }

// isGroupedReleaseOf: a is the grouped InPlaceSet release a fast rollback
// is measured against, the one that drains through the same protocol (the
// readiness gate, or the EndpointSlices CAFE writes).
func (a aggregate) isGroupedReleaseOf(rollback aggregate) bool {
	return a.isInPlaceSet() && a.writesEndpoints() == rollback.writesEndpoints()
}

// isForeign: a workload another controller releases (the Deployment, the
// CloneSet), whose pods CAFE does not manage.
func (a aggregate) isForeign() bool { return a.isDeployment() || a.isCloneSet() }

func (a aggregate) isDeployment() bool {
	_, ok := a.Scenario.Workload.(deployment)
	return ok
}

func (a aggregate) isCloneSet() bool {
	_, ok := a.Scenario.Workload.(cloneSet)
	return ok
}
