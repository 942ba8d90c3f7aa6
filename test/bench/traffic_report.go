package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
)

// trafficHeading opens the traffic part of the page.
const trafficHeading = "## Traffic through the gateway during a release (issue 13)"

// writeTraffic renders the traffic scenario's section; nothing when it did
// not run.
func (r report) writeTraffic(b *strings.Builder) {
	t := r.Traffic
	if t == nil {
		return
	}
	fmt.Fprintf(b, "%s\n\n", trafficHeading)
	fmt.Fprintf(b, "Measured on %s; the scenario took %s of the run.\n\n", t.Started.UTC().Format("2006-01-02 15:04 MST"), t.Duration.Round(time.Second))
	t.writeMethod(b)
	fmt.Fprintf(b, "### Results\n\n")
	t.writeTable(b)
	t.writeCalibration(b)
	t.writeMeaning(b)
	t.writeUnserved(b)
	t.writeProblems(b)
}

// writeUnserved lists, per release, the first seconds of load that had a
// failure: when (from the image change) and what.
func (t *trafficReport) writeUnserved(b *strings.Builder) {
	var releases []unservedRelease
	for _, r := range t.Results {
		releases = append(releases, unservedRelease{Title: r.Kind.Title, Run: r.Run, Seconds: r.UnservedSeconds})
	}
	writeUnservedSeconds(b, "the image change", releases)
}

func (t *trafficReport) writeMethod(b *strings.Builder) {
	s := t.Shape
	fmt.Fprintf(b, "### Method\n\n")
	lines := []string{
		fmt.Sprintf("A control plane of its own, started after the release and node-failure scenarios' one was stopped (so those measure the same cluster as before): as above, %d simulated kwok nodes over %s, plus what `cafe dev up` adds for traffic — the pod network (kwok hands pod IPs from a range of 198.18.0.0/16 that is routed into a network namespace the control plane created: no packet leaves the machine), Traefik %s (built from its Go module, pinned in `hack/tools`) with its Kubernetes Gateway API provider on loopback (Gateway `%s/%s`, listener `%s`), and the pod emulator (`cafe dev emulate-pods`, an **emulation**: kwok runs no process, so the emulator listens on each running pod's IP and declared container port and answers HTTP with the image's tag in `X-Cafe-Version`; it stops listening while kwok reports the container restarting or the pod gone).",
			t.Nodes, strings.Join(s.Zones, ", "), t.Traefik, controlplane.GatewayNamespace, controlplane.GatewayName, controlplane.GatewayListenerName),
		fmt.Sprintf("cafe manager runs as above, with `%s`: the gateway traffic provider puts its finalizer `traffic.cafe.io/gateway` on every pod behind an HTTPRoute of the Gateway and, once CAFE has closed a pod's readiness gate, lets go of it only when Traefik's own API no longer lists the pod among its servers; only then does CAFE restart (InPlaceSet) or delete (ReplicaSet mode) it. The native Deployment's pods are not CAFE's: nothing holds them. CAFE's admission webhooks run here too, as in the release scenarios: in ReplicaSet mode they are what refuses the ReplicaSet controller's deletion of a pod still being drained (it ranks not-ready pods before the lowest deletion cost), and a run without them failed 6 of 30,000 requests that way.", strings.Join(t.ManagerArgs, " ")),
		fmt.Sprintf("Per kind, in a namespace of its own: the Service (port %d), an HTTPRoute of the Gateway for host `bench.<namespace>.example` to it, and the workload at `%s` with %d replicas. The benchmark waits (watching) until every pod is Ready, the workload's controller is done and the EndpointSlices list %d ready endpoints, and then (polling Traefik's API, `/api/http/services`, every %s: it has no watch) until the gateway lists exactly the app's %d pods as servers.", servicePort, imageV1, s.Replicas, s.Replicas, trafficPoll, s.Replicas),
		fmt.Sprintf("Load: `internal/loadgen` sends `GET /` with that host to the gateway on loopback at a fixed rate (an open model: request i leaves at start + i/rate however slow the answers are; %s timeout; at most %d in flight, any more are dropped and count as failed), for %s; then the image changes to `%s`, and the load goes on until the gateway lists only the v2 pods and one whole second was answered by v2 alone.", loadgen.DefaultTimeout, loadgen.DefaultMaxInFlight, t.Baseline, imageV2),
		"**Failed** is every request not answered 2xx: other answers (Traefik answers 502 when the pod it picked refuses the connection), connection errors, timeouts and drops. **p99** is the 99th percentile of the time from sending a request to having read its whole answer, over the answered requests: *before* over the seconds before the image change, *during* from it to the end of the load.",
		fmt.Sprintf("**Wall time** is defined as in the release scenarios: from the image change until exactly %d pods exist, none terminating, all Ready and running `%s`. **Gateway on v2** is until Traefik's API lists exactly those pods.", s.Replicas, imageV2),
		fmt.Sprintf("**Rate**: the target is %d requests/s (`-traffic-rate`) unless the gateway would use more than %.0f%% of a core at it. Before the first release the benchmark sends the target for %s through the gateway and reads Traefik's CPU time (utime + stime of `/proc/<pid>/stat`); over the limit it tries a rate aimed at 90%% of it (Traefik's CPU taken as proportional to the rate), and so on. Traefik's CPU is read over each load run too: *gateway CPU* below is over the whole run (baseline, release, catching up) and over the release part alone.", t.TargetRate, 100*trafficCPULimit, calibrationStep),
		"**Control plane** is what the control plane (Traefik and the emulator aside), cafe manager and this benchmark (its watches and the load generator) used over the load run, in cores on average; **other load** is what the rest of the machine used meanwhile (other work on a shared machine). All of them and the gateway share the 2 CPUs, so the latency here is that of a busy machine, not of the gateway alone.",
	}
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", l)
	}
	fmt.Fprintf(b, "\nThe kinds, released one after the other:\n\n")
	for _, k := range trafficKinds(s) {
		fmt.Fprintf(b, "- **%s** (`%s`): %s.\n", k.Title, k.Key, k.Workload.Kind())
		for _, line := range k.Workload.Settings() {
			fmt.Fprintf(b, "  - %s\n", line)
		}
	}
	fmt.Fprintln(b)
}

// failedBreakdown renders a count of failures with its kinds.
func failedBreakdown(c loadgen.Counts) string {
	if c.Failed() == 0 {
		return "**0**"
	}
	var parts []string
	for _, f := range []struct {
		name string
		n    int64
	}{{"non-2xx", c.Non2xx}, {"conn errors", c.ConnErrors}, {"timeouts", c.Timeouts}, {"dropped", c.Dropped}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f.name, f.n))
		}
	}
	return fmt.Sprintf("**%d** (%s)", c.Failed(), strings.Join(parts, ", "))
}

func (t *trafficReport) writeTable(b *strings.Builder) {
	fmt.Fprintf(b, "| kind | run | requests/s | requests sent | failed | failed during the release | seconds not fully served | p99 before | p99 during | wall time | gateway on v2 | gateway CPU (whole run / release) | emulator CPU | control plane | other load |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, res := range t.Results {
		if !res.Completed && res.Total.Sent == 0 {
			fmt.Fprintf(b, "| %s | %d | %d | did not finish (see below) | | | | | | | | | | | |\n", res.Kind.Title, res.Run, res.Rate)
			continue
		}
		wall, gw := seconds(res.Wall), seconds(res.GatewayDone)
		if !res.Completed {
			wall, gw = "did not finish (see below)", ""
		}
		fmt.Fprintf(b, "| %s | %d | %d | %d | %s | %d | %d of %d | %s | %s | %s | %s | %.2f / %.2f cores | %.2f cores | %.2f cores | %.2f cores |\n",
			res.Kind.Title, res.Run, res.Rate, res.Total.Sent+res.Total.Dropped, failedBreakdown(res.Total.Counts), res.During.Failed(),
			res.Unserved, res.Total.Seconds, millis(res.Before.Latency.P99), millis(res.During.Latency.P99), wall, gw,
			res.TraefikCores, res.TraefikCoresDuring, res.EmulatorCores, res.ClusterCores, res.OtherCores)
	}
	fmt.Fprintln(b)
}

// millis renders a latency in milliseconds.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func (t *trafficReport) writeCalibration(b *strings.Builder) {
	writeCalibration(b, t.Calibration, "the app", "-traffic-rate", t.TargetRate, t.Rate)
}

// writeCalibration writes the rate calibration's steps (served at v1 by
// what, no release running) and which rate the releases ran at: target
// (the flag's) or the highest tried that kept the gateway under its CPU
// limit.
func writeCalibration(b *strings.Builder, steps []calibrationStepResult, what, flag string, target, rate int) {
	if len(steps) == 0 {
		return
	}
	fmt.Fprintf(b, "Rate calibration, before the first release (%s per rate, %s served at v1, no release running):\n\n", calibrationStep, what)
	fmt.Fprintf(b, "| requests/s | gateway CPU | failed | p99 |\n|---:|---:|---:|---:|\n")
	for _, c := range steps {
		fmt.Fprintf(b, "| %d | %.2f cores | %d | %s |\n", c.Rate, c.TraefikCores, c.Counts.Failed(), millis(c.P99))
	}
	fmt.Fprintln(b)
	if rate == target {
		fmt.Fprintf(b, "The target, %d requests/s (`%s`), kept the gateway under %.0f%% of a core: every release ran at it.\n\n", target, flag, 100*trafficCPULimit)
	} else {
		fmt.Fprintf(b, "At the target, %d requests/s (`%s`), the gateway used more than %.0f%% of a core on this machine; the releases ran at %d requests/s, the highest rate tried that stayed under it.\n\n", target, flag, 100*trafficCPULimit, rate)
	}
}

// byKind returns the completed results of the kind.
func (t *trafficReport) byKind(key string) []trafficResult {
	var out []trafficResult
	for _, res := range t.Results {
		if res.Kind.Key == key && res.Completed {
			out = append(out, res)
		}
	}
	return out
}

func (t *trafficReport) writeMeaning(b *strings.Builder) {
	fmt.Fprintf(b, "What the numbers say:\n\n")
	var lines []string
	for _, k := range trafficKinds(t.Shape) {
		results := t.byKind(k.Key)
		if len(results) == 0 {
			continue
		}
		var failed, sent int64
		for _, res := range results {
			failed += res.Total.Failed()
			sent += res.Total.Sent + res.Total.Dropped
		}
		res := results[0]
		switch {
		case k.Key == "deployment" && failed > 0:
			lines = append(lines, fmt.Sprintf("The native Deployment failed %d of %d requests. Its controller deletes old pods as soon as the new ones are up; kwok removes a deleted pod at once and the emulated container stops answering, while Traefik, which learns of the change from the EndpointSlices and applies configuration changes at most every 2 s, still sends requests to it.%s", failed, sent, errorSamples(res.Errors)))
		case k.Key == "deployment":
			lines = append(lines, fmt.Sprintf("The native Deployment failed no request of %d this time: its pods' removal and the gateway's view happened to line up. (The e2e test of the same release of 12 pods asserts failures; look at the load's seconds before trusting a 0 here.)", sent))
		case failed == 0:
			lines = append(lines, fmt.Sprintf("%s failed none of %d requests: each pod left the gateway (confirmed from Traefik's API) before CAFE touched it.", k.Title, sent))
		default:
			lines = append(lines, fmt.Sprintf("%s failed %d of %d requests, which the lossless protocol should have prevented.%s", k.Title, failed, sent, errorSamples(res.Errors)))
		}
		if bp, dp := res.Before.Latency.P99, res.During.Latency.P99; bp > 0 && dp > 0 {
			lines = append(lines, fmt.Sprintf("%s: p99 %s before the release, %s during it (%.1f×). During a release the control plane and CAFE work on the same 2 CPUs as the gateway and the emulator (%.2f cores on average over the load run, other work on the machine %.2f more), and the emulator opens and closes listeners.", k.Title, millis(bp), millis(dp), float64(dp)/float64(bp), res.ClusterCores, res.OtherCores))
		}
	}
	if walls := t.wallTimes(); walls != "" {
		lines = append(lines, "Wall time: "+walls+". CAFE holds each pod until the gateway itself confirms it no longer sends to it (Traefik applies configuration changes at most every 2 s, so no group is quicker than that); the Deployment replaces pods continuously and waits for nobody, which is what costs it the failed requests.")
	}
	var most float64
	for _, res := range t.Results {
		most = max(most, res.TraefikCores, res.TraefikCoresDuring)
	}
	if len(t.Results) > 0 {
		verdict := "under"
		if most > trafficCPULimit {
			verdict = "over"
		}
		lines = append(lines, fmt.Sprintf("The gateway used at most %.2f cores at %d requests/s (over a whole run or its release part), %s the limit of %.2f.", most, t.Rate, verdict, trafficCPULimit))
	}
	for _, res := range t.Results {
		if res.Completed && res.OtherCores > disturbedAbove {
			lines = append(lines, fmt.Sprintf("**Warning:** during the %s run other processes on this machine used %.2f cores on average; its latencies and wall time are disturbed by them.", res.Kind.Key, res.OtherCores))
		}
	}
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", l)
	}
	fmt.Fprintln(b)
}

// wallTimes lists the first completed release's wall time of each kind.
func (t *trafficReport) wallTimes() string {
	var parts []string
	for _, k := range trafficKinds(t.Shape) {
		if results := t.byKind(k.Key); len(results) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", k.Title, seconds(results[0].Wall)))
		}
	}
	return strings.Join(parts, ", ")
}

// errorSamples quotes the most frequent failure messages.
func errorSamples(errs []loadgen.ErrorSample) string {
	if len(errs) == 0 {
		return ""
	}
	sorted := slices.Clone(errs)
	slices.SortStableFunc(sorted, func(a, b loadgen.ErrorSample) int { return int(b.Count - a.Count) })
	var parts []string
	for _, e := range sorted[:min(len(sorted), 3)] {
		parts = append(parts, fmt.Sprintf("%d× `%s`", e.Count, e.Message))
	}
	return " Failures seen: " + strings.Join(parts, "; ") + "."
}

func (t *trafficReport) writeProblems(b *strings.Builder) {
	for _, res := range t.Results {
		if res.Completed {
			continue
		}
		fmt.Fprintf(b, "#### %s, run %d: did not finish\n\n```\n%s\n```\n\n", res.Kind.Title, res.Run, strings.TrimSpace(res.Problem))
	}
}

// trafficSummary is what the benchmark prints at the end for the traffic
// scenario.
func (r report) trafficSummary(b *strings.Builder) {
	if r.Traffic == nil {
		return
	}
	fmt.Fprintf(b, "Traffic through the gateway (%d pods):\n\n", r.Traffic.Shape.Replicas)
	r.Traffic.writeTable(b)
	r.Traffic.writeCalibration(b)
}

// The parts of the page, each written by some of the scenarios.
const (
	partReleases    = "releases"
	partNodeFailure = "node failure"
	partTraffic     = "traffic"
	partClassic     = "classic"
	partIAM         = "iam"
	partMachine     = "machine"
)

// allParts are the parts a run may replace.
var allParts = []string{partReleases, partNodeFailure, partTraffic, partClassic, partIAM}

// partsRan lists the parts of the page the run wrote (scenarios without
// those on their own control planes; those whether they ran).
func partsRan(scenarios []scenario, own ownPlanes) []string {
	var out []string
	if slices.ContainsFunc(scenarios, func(s scenario) bool { return s.Workload != nil }) {
		out = append(out, partReleases)
	}
	if slices.ContainsFunc(scenarios, func(s scenario) bool { return s.NodeFailure }) {
		out = append(out, partNodeFailure)
	}
	if own.Traffic {
		out = append(out, partTraffic)
	}
	if own.Classic {
		out = append(out, partClassic)
	}
	if own.IAM {
		out = append(out, partIAM)
	}
	return out
}

// partOf says which part a "## " heading opens.
func partOf(heading string) string {
	switch {
	case strings.HasPrefix(heading, "## Machine"):
		return partMachine
	case strings.HasPrefix(heading, "## Node failure"):
		return partNodeFailure
	case strings.HasPrefix(heading, "## Traffic"):
		return partTraffic
	case strings.HasPrefix(heading, "## Classic hosts"):
		return partClassic
	case strings.HasPrefix(heading, "## IAM"):
		return partIAM
	default:
		return partReleases
	}
}

// pageChunk is the preamble of a page (part "") or one "## " section.
type pageChunk struct {
	part string
	text string
}

// splitPage cuts a page into its preamble and its "## " sections (headings
// inside fenced code blocks do not count).
func splitPage(page string) []pageChunk {
	chunks := []pageChunk{{}}
	fenced := false
	for line := range strings.SplitAfterSeq(page, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced && strings.HasPrefix(line, "## ") {
			chunks = append(chunks, pageChunk{part: partOf(line)})
		}
		chunks[len(chunks)-1].text += line
	}
	return chunks
}

// fullRunClaim is what the page's preamble says of a page written whole.
const fullRunClaim = "Every number on this page was measured in that run; nothing is carried over from earlier runs."

// partNote is the preamble's sentence for the parts a partial run
// replaced (flags: the run's command-line selection); its start
// identifies it when a later run replaces it.
func (r report) partNote(flags string, ran []string) string {
	start := r.Started
	if r.Traffic != nil && len(ran) == 1 && ran[0] == partTraffic {
		start = r.Traffic.Started
	}
	if r.Classic != nil && len(ran) == 1 && ran[0] == partClassic {
		start = r.Classic.Started
	}
	if r.IAM != nil && len(ran) == 1 && ran[0] == partIAM {
		start = r.IAM.Started
	}
	return fmt.Sprintf("%s: `go run ./test/bench %s` on %s, which took %s; bin/cafe %s.",
		partNotePrefix(ran), flags, start.UTC().Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second), strings.TrimPrefix(r.Machine.Source, "bin/cafe "))
}

func partNotePrefix(ran []string) string {
	return "Sections measured in a later run (" + strings.Join(ran, ", ") + ")"
}

// mergeParts replaces, in the page old, the sections of the parts that ran
// with those of fresh (a part old lacks is appended), keeps every other
// section and the machine description as they are, and says in the
// preamble which sections come from this run.
func mergeParts(old, fresh string, ran []string, note string) string {
	oldChunks, freshChunks := splitPage(old), splitPage(fresh)
	of := func(part string) string {
		var b strings.Builder
		for _, c := range freshChunks[1:] {
			if c.part == part {
				b.WriteString(c.text)
			}
		}
		return b.String()
	}
	var b strings.Builder
	b.WriteString(mergePreamble(oldChunks[0].text, ran, note))
	placed := map[string]bool{}
	for _, c := range oldChunks[1:] {
		if !slices.Contains(ran, c.part) {
			b.WriteString(c.text)
			continue
		}
		if !placed[c.part] {
			placed[c.part] = true
			b.WriteString(ensureBlankLineAfter(of(c.part)))
		}
	}
	for _, part := range ran {
		if !placed[part] {
			text := of(part)
			if text == "" {
				continue
			}
			if s := b.String(); !strings.HasSuffix(s, "\n\n") {
				b.WriteString(strings.Repeat("\n", 2-min(2, len(s)-len(strings.TrimRight(s, "\n")))))
			}
			b.WriteString(text)
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// ensureBlankLineAfter ends a section with one blank line, so the next one
// starts a new paragraph.
func ensureBlankLineAfter(s string) string {
	if s == "" {
		return s
	}
	return strings.TrimRight(s, "\n") + "\n\n"
}

// mergePreamble rewrites the claim that the whole page is one run's, drops
// an earlier note on the same parts, and adds note.
func mergePreamble(preamble string, ran []string, note string) string {
	preamble = strings.Replace(preamble, fullRunClaim, "Every number was measured in the run that wrote its section; nothing is carried over from earlier runs.", 1)
	var kept []string
	for _, para := range strings.Split(strings.TrimRight(preamble, "\n"), "\n\n") {
		if strings.HasPrefix(para, partNotePrefix(ran)+":") {
			continue
		}
		kept = append(kept, para)
	}
	kept = append(kept, note)
	return strings.Join(kept, "\n\n") + "\n\n"
}
