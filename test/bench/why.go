package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// whyLines explains, with this run's numbers only, what a CafeDeployment
// scenario's missed targets come from.
// ratio is the wall-time target against the Deployment, lim the variant's
// other limits, cores the machine's CPU count.
func whyLines(a aggregate, native *aggregate, ratio float64, lim limits, cores int) []string {
	var lines []string
	if native != nil && a.Wall.Seconds() > ratio*native.Wall.Seconds() {
		lines = append(lines, wallReasons(a, native, ratio)...)
		lines = append(lines, cpuBound(a, *native, "the Deployment's release", time.Duration(ratio*float64(native.Wall)), cores))
	}
	if lim.WritesPerPod > 0 && a.WritesPerPod > lim.WritesPerPod {
		lines = append(lines, writeReasons(a, native)...)
	}
	if a.CafeShare > lim.CafeShare {
		lines = append(lines, cpuReasons(a)...)
	}
	if a.PeakRSS > lim.RSS {
		lines = append(lines, fmt.Sprintf("Memory: cafe manager peaked at %s during the release.", mib(a.PeakRSS)))
	}
	return lines
}

func wallReasons(a aggregate, native *aggregate, ratio float64) []string {
	t := a.Typical
	groups := groupCount(a)
	perGroup := a.Wall / time.Duration(max(groups, 1))
	line := fmt.Sprintf("Wall time: %s against the Deployment's %s. The release runs %d groups, flowing from one to the next (no gate: the next group's pods start draining as soon as the budget allows, a group's worth in operation at most): %s per group of %d pods on average.",
		seconds(a.Wall), seconds(native.Wall), groups, seconds(perGroup), a.Scenario.Workload.(cafeDeployment).shape.BatchSize)
	if len(t.Groups) > 0 {
		line += fmt.Sprintf(" The CafeDeployment's release record (to the second) has the groups taking %s.", durationSpread(t.Groups))
	}
	lines := []string{line}
	if t.Hops != nil {
		lines = append(lines, t.Hops.lines()...)
		limit := time.Duration(ratio * float64(native.Wall))
		if l := t.Hops.barrierLine(limit); l != "" {
			lines = append(lines, l)
		}
	}
	if s, ok := t.Delta.Clients[cafeProcess]; ok {
		writes := s.successfulWrites() + s.failedWrites()
		lines = append(lines, fmt.Sprintf("CAFE sent %.0f write requests in %s, %.1f per second, %.0f per group (successful ones per pod: %s).",
			writes, seconds(t.Wall), writes/t.Wall.Seconds(), writes/float64(max(groups, 1)), methodList(s.writesByMethod(), t.Pods)))
		lines = append(lines, rateLimitLine(s, t.Wall)...)
		lines = append(lines, reconcileLatencyLine(s, t.Delta.Window)...)
	}
	cp, nativeCP := a.ControlPlaneCPU, native.ControlPlaneCPU
	lines = append(lines, fmt.Sprintf("The control plane used %.1f s of CPU in %s (%.2f cores on average) against %.1f s in %s (%.2f cores) for the Deployment; CAFE used %.2f cores.",
		cp, seconds(t.Delta.Window), cp/t.Delta.Window.Seconds(), nativeCP, seconds(native.Typical.Delta.Window), nativeCP/native.Typical.Delta.Window.Seconds(), a.CafeCPU/t.Delta.Window.Seconds()))
	return lines
}

// groupCount is the number of groups of the scenario's release plan.
func groupCount(a aggregate) int {
	p, err := a.Scenario.Workload.(cafeDeployment).plan()
	if err != nil {
		return 0
	}
	return len(p.Groups)
}

func writeReasons(a aggregate, native *aggregate) []string {
	t := a.Typical
	var top []string
	for i, e := range t.Delta.API.OK.sorted() {
		if i == 6 {
			break
		}
		s := fmt.Sprintf("%s %s", e.Key, perPod(e.Value, t.Pods))
		if native != nil {
			s += fmt.Sprintf(" (Deployment: %s)", perPod(native.Typical.Delta.API.OK[e.Key], native.Typical.Pods))
		}
		top = append(top, s)
	}
	head := fmt.Sprintf("Writes: %.2f per pod all-in.", a.WritesPerPod)
	if len(a.Runs) > 1 {
		head = fmt.Sprintf("Writes: %.2f per pod all-in (median of %d runs; the breakdowns are of run %d, the median-wall-time one, with %.2f).", a.WritesPerPod, len(a.Runs), t.Run, t.writesPerPod())
	}
	lines := []string{fmt.Sprintf("%s The largest, per pod: %s.", head, strings.Join(top, "; "))}
	if bg := t.backgroundWrites(); bg > 0 {
		lines = append(lines, fmt.Sprintf("Node heartbeats (leases, node status) are %.2f of them per pod: %.1f writes per second that accrue for as long as the release lasts.",
			bg/float64(t.Pods), bg/t.Delta.Window.Seconds()))
	}
	if native != nil {
		ours, theirs := endpointWrites(*t), endpointWrites(*native.Typical)
		if ours > 1.5*theirs {
			lines = append(lines, fmt.Sprintf("kube-controller-manager's endpoint controllers wrote the Service's Endpoints and EndpointSlices %.2f times per pod (Deployment: %.2f): readiness flips (gate closed, gate reopened, kwok's Ready changes) that arrive one by one are synced one by one, each sync rewriting the Service's %d-address Endpoints object and a slice, where flips arriving in a burst are synced together. kube-controller-manager used %.1f s of CPU (Deployment: %.1f s).",
				ours/float64(t.Pods), theirs/float64(native.Typical.Pods), t.Pods, t.Delta.CPU["kube-controller-manager"], native.Typical.Delta.CPU["kube-controller-manager"]))
		}
	}
	if s, ok := t.Delta.Clients[cafeProcess]; ok {
		lines = append(lines, podSetWrites(t, s)...)
		lines = append(lines, fmt.Sprintf("CAFE's own successful writes: %.2f per pod (%s), plus %.2f failed per pod.",
			s.successfulWrites()/float64(t.Pods), methodList(s.writesByMethod(), t.Pods), s.failedWrites()/float64(t.Pods)))
	}
	return lines
}

// rollbackWhyLines explains a fast rollback slower than its target against
// the grouped release of the same pods: with many more pods in operation at
// once, only a release that waits can get faster.
func rollbackWhyLines(a, grouped aggregate, cores int) []string {
	if a.Wall.Seconds() <= targetFastRollbackRatio*grouped.Wall.Seconds() {
		return nil
	}
	rate := func(x aggregate) float64 { return float64(x.Typical.Pods) / x.Wall.Seconds() }
	lines := []string{
		fmt.Sprintf("Wall time: %s against the grouped release's %s: %.1f pods released per second against %.1f, although the water level alone bounds the rollback (many times a group's pods in operation at once).",
			seconds(a.Wall), seconds(grouped.Wall), rate(a), rate(grouped)),
		cpuBound(a, grouped, "the grouped release", time.Duration(targetFastRollbackRatio*float64(grouped.Wall)), cores),
	}
	if s, ok := a.Typical.Delta.Clients[cafeProcess]; ok {
		lines = append(lines, rateLimitLine(s, a.Typical.Wall)...)
		lines = append(lines, reconcileLatencyLine(s, a.Typical.Delta.Window)...)
	}
	return lines
}

// rateLimitLine says how long CAFE's requests waited for its own client's
// rate limit during the release: a release whose writes queue there is
// bound by cafe manager's --kube-api-qps, not by the control plane.
func rateLimitLine(s clientStats, wall time.Duration) []string {
	if s.RateLimited < 0 {
		return nil
	}
	return []string{fmt.Sprintf("CAFE's requests waited %.1f s in all (summed over requests) for its client's rate limit (cafe manager --kube-api-qps), %.1f per second of the release.",
		s.RateLimited, s.RateLimited/wall.Seconds())}
}

// reconcileLatencyLine says how long CAFE's reconciles took during the
// release and how long their requests waited in the work queue first.
// Every step of the protocol a pod goes through waits for one of them, so
// a controller reconciling nearly all the time with long reconciles tells
// that its writes' round trips (part of a reconcile) set the pace of a
// hop; short, rare ones tell that the hops wait elsewhere.
func reconcileLatencyLine(s clientStats, window time.Duration) []string {
	var parts []string
	for _, e := range s.Reconciles.sorted() {
		if e.Value < 1 || s.ReconcileSeconds[e.Key] <= 0 {
			continue
		}
		took, queued := s.reconcileMeans(e.Key)
		parts = append(parts, fmt.Sprintf("%s %.0f, %s each on average after %s in its work queue, %.1f in progress at a time",
			e.Key, e.Value, millis(took), millis(queued), s.ReconcileSeconds[e.Key]/window.Seconds()))
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"CAFE's reconciles during the release (a reconcile lasts until the writes it sent are answered): " + strings.Join(parts, "; ") + "."}
}

// cpuBound says whether the machine's cores were busy throughout the
// release, so that the release waited for CPU rather than for a step (more
// pods in operation at once cannot make it faster then), and how much less
// CPU per pod the wall-time limit needs at the rate the release used CPU.
func cpuBound(a, against aggregate, what string, limit time.Duration, cores int) string {
	t, o := a.Typical, against.Typical
	rate := t.releaseCPU() / t.Delta.Window.Seconds()
	allowed := 1000 * rate * limit.Seconds() / float64(t.Pods)
	return fmt.Sprintf("CPU: the machine was busy %.2f of its %d cores (%.0f%%) during the release, %.2f (%.0f%%) during %s: both waited for CPU more than for any step. The control plane and CAFE spent %.1f ms of CPU per pod, %s %.1f ms. At the rate they used CPU here (%.2f cores), finishing within the %s limit allows %.1f ms per pod: %.0f%% less than now.",
		t.busyCores(), cores, 100*t.busyCores()/float64(cores), o.busyCores(), 100*o.busyCores()/float64(cores), what, t.cpuPerPod(), what, o.cpuPerPod(), rate, seconds(limit), allowed, 100*(1-allowed/t.cpuPerPod()))
}

func cpuReasons(a aggregate) []string {
	t := a.Typical
	line := fmt.Sprintf("CPU: CAFE used %.1f s against the control plane's %.1f s.", a.CafeCPU, a.ControlPlaneCPU)
	if s, ok := t.Delta.Clients[cafeProcess]; ok {
		if n := s.Reconciles.total(); n > 0 {
			line += fmt.Sprintf(" It ran %.0f reconciles (%s), %.1f ms of CPU each.", n, reconcileList(s.Reconciles), 1000*a.CafeCPU/n)
		}
	}
	return []string{line}
}

func reconcileList(c counts[string]) string {
	var parts []string
	for _, e := range c.sorted() {
		parts = append(parts, fmt.Sprintf("%s %.0f", e.Key, e.Value))
	}
	return strings.Join(parts, ", ")
}

// endpointWrites counts the successful writes to Endpoints and
// EndpointSlices.
func endpointWrites(r runResult) float64 {
	var n float64
	for k, v := range r.Delta.API.OK {
		if strings.HasPrefix(k.Resource, "endpoints") {
			n += v
		}
	}
	return n
}

// durationSpread renders min, median and max of durations.
func durationSpread(ds []time.Duration) string {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return fmt.Sprintf("%s (min) / %s (median) / %s (max)", seconds(sorted[0]), seconds(sorted[(len(sorted)-1)/2]), seconds(sorted[len(sorted)-1]))
}

// podSetWrites relates CAFE's writes to its pod sets to its reconciles and
// the release's groups.
func podSetWrites(t *runResult, s clientStats) []string {
	ok := t.Delta.API.OK
	applies := ok[writeKey{Verb: "APPLY", Resource: "inplacesets.cafe.io"}]
	statuses := ok[writeKey{Verb: "PATCH", Resource: "inplacesets.cafe.io/status"}]
	var lines []string
	if applies > 0 {
		lines = append(lines, fmt.Sprintf("InPlaceSets were server-side applied %.0f times (%.2f per pod) in %.0f CafeDeployment reconciles, for %d release groups; their status was patched %.0f times in %.0f InPlaceSet reconciles.",
			applies, applies/float64(t.Pods), s.Reconciles["cafedeployment"], len(t.Groups), statuses, s.Reconciles["inplaceset"]))
	}
	if rejected := t.Delta.API.Rejected; rejected.total() > 0 {
		var parts []string
		for i, e := range rejected.sorted() {
			if i == 4 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s: %.0f", e.Key, e.Value))
		}
		lines = append(lines, fmt.Sprintf("Failed writes (not in the count, but served): %s.", strings.Join(parts, "; ")))
	}
	return lines
}
