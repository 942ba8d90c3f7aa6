package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
)

// classicHeading opens the classic part of the page.
const classicHeading = "## Classic hosts: 60 instances released under load (issue 15)"

// writeClassic renders the classic scenario's section; nothing when it did
// not run.
func (r report) writeClassic(b *strings.Builder) {
	t := r.Classic
	if t == nil {
		return
	}
	fmt.Fprintf(b, "%s\n\n", classicHeading)
	m := r.Machine
	fmt.Fprintf(b, "Measured on %s; the scenario took %s of the run. Machine: %s, %d CPUs, %s of memory, Linux %s, %s; control plane etcd %s, Kubernetes %s, kwok %s; %s.\n\n",
		t.Started.UTC().Format("2006-01-02 15:04 MST"), t.Duration.Round(time.Second), m.CPUModel, m.CPUs, m.MemTotal, m.Kernel, m.Go, m.Etcd, m.Kubernetes, m.Kwok, m.Source)
	t.writeMethod(b)
	fmt.Fprintf(b, "### Results\n\n")
	t.writeTables(b)
	t.writeHosts(b)
	t.writeCalibration(b)
	t.writeMeaning(b)
	t.writeUnserved(b)
	t.writeProblems(b)
}

func (t *classicReport) writeMethod(b *strings.Builder) {
	w := classicWorkload()
	fmt.Fprintf(b, "### Method\n\n")
	var hosts []string
	for _, h := range t.Hosts {
		hosts = append(hosts, fmt.Sprintf("`%s` (%s, %s)", h.Name, h.Zone, h.Address))
	}
	lines := []string{
		fmt.Sprintf("A control plane of its own, started after the others were stopped: %d simulated kwok nodes round-robin over %s (2 per zone), the pod network, Traefik %s with its Gateway API provider (Gateway `%s/%s`), the pod emulator and the service registry, as for the traffic scenario; and **%d classic hosts**, 2 per zone: %s. Each is what `cafe dev up --classic-hosts %d` runs: a network namespace of its own (`cafe-host-<id>-<n>`) joined to the machine by a veth pair and holding the host's one address, a client certificate from the cluster's signer (as `cafe host enroll` issues), and `bin/cafe agent --netns <namespace> --registry <the registry>` as a child process of the control plane (component `agent-<host>`), which starts the instances inside the host's namespace and relays the registry into it (the benchmark's apps call nobody). The demo app's packages, %s, are served by an artifact store on loopback.",
			t.Nodes, strings.Join(classicZones, ", "), t.Traefik, controlplane.GatewayNamespace, controlplane.GatewayName, len(t.Hosts), strings.Join(hosts, ", "), len(t.Hosts), strings.Join(t.Packages, " and ")),
		fmt.Sprintf("cafe manager runs as in the release scenarios, with `%s`: its gateway traffic provider holds its finalizer on every pod and classic instance behind a route of the Gateway and lets go of one only once Traefik's API no longer lists it; only then is the instance's package changed (the pod's image patched).", strings.Join(t.ManagerArgs, " ")),
		fmt.Sprintf("**The apps**: %d CafeDeployments `app-0` … `app-%d` in one namespace, each with %d replicas (unitReplicas %d in each zone) and a Service `app-<i>` (port %d → %d+i) selecting them; one HTTPRoute for host `%s` with the %d Services as backendRefs (equal weights), so the load spreads over all %d replicas. Release settings, the same for both kinds: %s; %s.",
			classicAppCount, classicAppCount-1, classicReplicas, classicPerUnit, servicePort, classicBasePort, classicRouteHost, classicAppCount, classicTotal, w.Settings()[1], w.Settings()[2]),
		fmt.Sprintf("**Classic instances** (`vms`): every zone is a classic unit (`spec.classic.units` zone-a, zone-b, zone-c; `spec.classic.artifact` the demo app's package, app i on port %d+i): each zone a ClassicSet of %d instances, which places at most one instance of a set on a host, so each host runs one instance of every app, %d in all (a host's default capacity), all on the host's address. These are **real processes**: `bin/demo-app` unpacked from the package (fetched and checked once per host for all its instances), started by the agent in the host's namespace, health-checked every second.", classicBasePort, classicPerUnit, classicAppCount),
		fmt.Sprintf("**Pods** (`pods`, the baseline, on the same control plane after the instances' namespace was deleted): the same CafeDeployments without `spec.classic`: InPlaceSet pods of `%s` declaring container port %d+i, %d pods on the %d nodes. These are **emulated**: kwok runs no process, it reports containers started and restarted; the pod emulator listens on each running pod's IP and port and answers as the demo app does (same headers and body), and stops listening while kwok reports the container restarting.", imageV1, classicBasePort, classicTotal, t.Nodes),
		fmt.Sprintf("**The release**: after %s of load, every CafeDeployment is changed to v2 at once (10 writes sent together): `spec.classic.artifact` to the v2 package, or the pods' image to `%s`. Per instance CAFE closes its traffic gate, waits until no EndpointSlice lists it and the gateway no longer sends to it, writes the new package; the agent fetches it (once per host), stops the old process (SIGTERM), starts the new one and reports it Ready once it answers its health check; CAFE opens the gate.", t.Baseline, imageV2),
		fmt.Sprintf("**Load**: `internal/loadgen` sends `GET /` with host `%s` to the gateway on loopback at a fixed rate (an open model; %s timeout; at most %d in flight), from the baseline until the gateway lists all %d again and one whole second was answered by v2 alone. **Failed** is every request not answered 2xx; **p99** is over the answered requests, *before* the change and *during* the rest of the load. **Answered by** counts the distinct instances (pods) that answered (`X-Cafe-Pod`).", classicRouteHost, loadgen.DefaultTimeout, loadgen.DefaultMaxInFlight, classicTotal),
		fmt.Sprintf("**Wall time** runs from the first change until every app's CafeDeployment reports its release Completed (every replica updated and available) **and** every one of the %d instances reports v2: spec and the process the agent runs at the v2 package's SHA-256, Ready for its current spec, traffic gate open (for pods: %d pods Ready, none terminating, running `%s` as kwok reports it). The two times are shown apart, and **gateway** is until Traefik's API lists all %d again.", classicTotal, classicTotal, imageV2, classicTotal),
		"**CPU and memory** are read from `/proc` over the release, from the first change until the gateway lists all 60 again: CPU time is utime + stime of `/proc/<pid>/stat`. Per host, the agent is the control plane's component `agent-<host>` (its PID from `ControlPlane.PID`); its peak RSS is `VmHWM` of `/proc/<pid>/status`, reset through `clear_refs` at the change. The instance processes are the agent's children: their CPU is that of the ones the agent stopped and reaped (its cutime + cstime) plus that of the ones running, their memory is of those running at the end: RSS (`VmRSS`) summed, which counts the binary's pages each shares with the host's other instances once per process, and PSS (`Pss` of `/proc/<pid>/smaps_rollup`, shared pages split among the processes that map them) summed. The control plane is etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the registry's etcd; **other load** is what the rest of the machine used meanwhile.",
	}
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", l)
	}
	fmt.Fprintln(b)
}

func (t *classicReport) writeTables(b *strings.Builder) {
	fmt.Fprintf(b, "| kind | run | requests/s | requests sent | failed | failed during the release | seconds not fully served | p99 before | p99 during | answered by | **wall time** | all %d on v2 | every release Completed | gateway lists all %d |\n", classicTotal, classicTotal)
	fmt.Fprintf(b, "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, res := range t.Results {
		if res.Total.Sent == 0 && !res.Completed {
			fmt.Fprintf(b, "| %s | %d | %d | did not finish (see below) | | | | | | | | | | |\n", res.Kind.Title, res.Run, res.Rate)
			continue
		}
		wall, settled, done, gw := "**"+seconds(res.Wall)+"**", seconds(res.Settled), seconds(res.StatusDone), seconds(res.GatewayDone)
		if !res.Completed {
			wall, settled, done, gw = "did not finish (see below)", "", "", ""
		}
		fmt.Fprintf(b, "| %s | %d | %d | %d | %s | %d | %d of %d | %s | %s | %d | %s | %s | %s | %s |\n",
			res.Kind.Title, res.Run, res.Rate, res.Total.Sent+res.Total.Dropped, failedBreakdown(res.Total.Counts), res.During.Failed(),
			res.Unserved, res.Total.Seconds, millis(res.Before.Latency.P99), millis(res.During.Latency.P99), len(res.Total.Pods),
			wall, settled, done, gw)
	}
	fmt.Fprintln(b)
	fmt.Fprintf(b, "CPU time during the release (seconds, from the first change until the gateway listed all %d again):\n\n", classicTotal)
	fmt.Fprintf(b, "| kind | run | window | CAFE | control plane | gateway | hosts' agents (%d) | instance processes | pod emulator | benchmark (watches, load) | other load |\n", len(t.Hosts))
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, res := range t.Results {
		if res.CPU == nil {
			continue
		}
		tot := hostTotals(res.Hosts)
		agentCell, instanceCell := fmt.Sprintf("%.1f", tot.AgentCPU), fmt.Sprintf("%.1f", tot.InstancesCPU)
		if !res.Kind.VMs {
			agentCell, instanceCell = "–", "–"
		}
		fmt.Fprintf(b, "| %s | %d | %s | %.1f | %.1f | %.1f | %s | %s | %.1f | %.1f | %.2f cores |\n",
			res.Kind.Title, res.Run, seconds(res.Window), res.CPU[cafeProcess], sumOf(res.CPU, controlPlaneComponents), res.CPU[controlplane.TraefikComponent],
			agentCell, instanceCell, res.CPU[controlplane.PodEmulatorComponent], res.CPU[benchProcess], res.OtherCores)
	}
	fmt.Fprintln(b)
}

// writeHosts lists each host's agent and instances over each release of
// the instances.
func (t *classicReport) writeHosts(b *strings.Builder) {
	for _, res := range t.Results {
		if !res.Kind.VMs || len(res.Hosts) == 0 {
			continue
		}
		fmt.Fprintf(b, "Per host, %s, run %d (over the release's %s):\n\n", res.Kind.Title, res.Run, seconds(res.Window))
		fmt.Fprintf(b, "| host | zone | address | agent CPU | agent CPU, cores on average | agent peak RSS | instances running at the end | instances' CPU | instances' RSS (sum) | instances' PSS (sum) | largest instance peak RSS |\n")
		fmt.Fprintf(b, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, h := range res.Hosts {
			fmt.Fprintf(b, "| %s | %s | %s | %.2f s | %.3f | %s | %d | %.2f s | %s | %s | %s |\n", h.Host, h.Zone, h.Address, h.AgentCPU, h.AgentCPU/res.Window.Seconds(),
				mib(h.AgentPeakRSS), h.Instances, h.InstancesCPU, mib(h.InstancesRSS), mib(h.InstancesPSS), mib(h.InstancePeakRSS))
		}
		tot := hostTotals(res.Hosts)
		fmt.Fprintf(b, "| **all %d hosts** | | | %.2f s | %.3f | %s (largest) | %d | %.2f s | %s | %s | |\n\n", len(res.Hosts), tot.AgentCPU, tot.AgentCPU/res.Window.Seconds(),
			mib(tot.MostAgentRSS), tot.Instances, tot.InstancesCPU, mib(tot.InstancesRSS), mib(tot.InstancesPSS))
	}
	for _, res := range t.Results {
		if res.Kind.VMs || res.CPU == nil {
			continue
		}
		fmt.Fprintf(b, "What plays the nodes for %s, run %d: kwok %.1f s of CPU and the pod emulator %.1f s (peak RSS %s) for all %d pods over the release's %s.\n\n",
			res.Kind.Title, res.Run, res.CPU["kwok"], res.CPU[controlplane.PodEmulatorComponent], mib(res.EmulatorPeakRSS), classicTotal, seconds(res.Window))
	}
}

func (t *classicReport) writeCalibration(b *strings.Builder) {
	writeCalibration(b, t.Calibration, "the instances", "-classic-rate", t.TargetRate, t.Rate)
}

// completed returns the completed results of a kind.
func (t *classicReport) completed(vms bool) []classicResult {
	var out []classicResult
	for _, res := range t.Results {
		if res.Kind.VMs == vms && res.Completed {
			out = append(out, res)
		}
	}
	return out
}

func (t *classicReport) writeMeaning(b *strings.Builder) {
	var lines []string
	for _, vms := range []bool{true, false} {
		results := t.completed(vms)
		if len(results) == 0 {
			continue
		}
		var failed, sent int64
		for _, res := range results {
			failed += res.Total.Failed()
			sent += res.Total.Sent + res.Total.Dropped
		}
		res := results[0]
		what := "instance"
		if !vms {
			what = "pod"
		}
		if failed == 0 {
			lines = append(lines, fmt.Sprintf("%s: none of %d requests failed: each %s left the gateway (confirmed from Traefik's API) before CAFE changed it.", res.Kind.Title, sent, what))
		} else {
			lines = append(lines, fmt.Sprintf("%s: %d of %d requests failed, which the lossless protocol should have prevented.%s", res.Kind.Title, failed, sent, errorSamples(res.Errors)))
		}
		if bp, dp := res.Before.Latency.P99, res.During.Latency.P99; bp > 0 && dp > 0 {
			lines = append(lines, fmt.Sprintf("%s: p99 %s before the release, %s during it (%.1f×).", res.Kind.Title, millis(bp), millis(dp), float64(dp)/float64(bp)))
		}
	}
	vms, pods := t.completed(true), t.completed(false)
	if len(vms) > 0 && len(pods) > 0 {
		v, p := vms[0], pods[0]
		lines = append(lines, fmt.Sprintf("Wall time: the %d instances %s, the %d pods %s (%.1f×). The instances' release does what the pods' does (the same groups, the same wait for the gateway, whose configuration changes apply at most every 2 s) and more: the agent sees the change through its own watch, fetches and unpacks the package, stops a real process (SIGTERM, its open connections drained) and starts one, which is Ready only once it answered a health check (every second) and the agent wrote its status; kwok reports an emulated restart at once.",
			classicTotal, seconds(v.Wall), classicTotal, seconds(p.Wall), v.Wall.Seconds()/max(p.Wall.Seconds(), 0.001)))
		lines = append(lines, fmt.Sprintf("CAFE used %.1f s of CPU for the instances' release and %.1f s for the pods'; the control plane %.1f s and %.1f s.",
			v.CPU[cafeProcess], p.CPU[cafeProcess], sumOf(v.CPU, controlPlaneComponents), sumOf(p.CPU, controlPlaneComponents)))
	}
	if len(vms) > 0 {
		v := vms[0]
		tot := hostTotals(v.Hosts)
		n := max(len(v.Hosts), 1)
		lines = append(lines, fmt.Sprintf("The agents: %.2f s of CPU together over the %s release (%.3f cores per host on average, %.2f s per host), at most %s of peak RSS for one; each changed its %d instances (one per app, in the apps' two groups). The instances used %.1f s of CPU (serving %d requests/s between them, stopping and starting) and, at the end, %s of RSS summed over the %d processes (each counts the pages of the binary it shares with the host's other instances) or %s of PSS (shared pages split among them: what they take together).",
			tot.AgentCPU, seconds(v.Window), tot.AgentCPU/float64(n)/v.Window.Seconds(), tot.AgentCPU/float64(n), mib(tot.MostAgentRSS), classicAppCount, tot.InstancesCPU, v.Rate, mib(tot.InstancesRSS), tot.Instances, mib(tot.InstancesPSS)))
		lines = append(lines, "What is emulated and what is not: the hosts' network namespaces, the agents and the instances are real (processes, packages fetched over HTTP and checked, health checks, TCP through Traefik to each host's address); the pods are kwok's, and the pod emulator's answers stand in for their containers (no process starts, no image is pulled). The pods' numbers are thus a floor set by the control plane; the instances' include what a VM's agent really does.")
	}
	for _, res := range t.Results {
		if res.Completed && res.OtherCores > disturbedAbove {
			lines = append(lines, fmt.Sprintf("**Warning:** during the %s release other processes on this machine used %.2f cores on average; its latencies and wall time are disturbed by them.", res.Kind.Key, res.OtherCores))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "What the numbers say:\n\n")
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", l)
	}
	fmt.Fprintln(b)
}

// writeUnserved lists, per release, the first seconds of load that had a
// failure.
func (t *classicReport) writeUnserved(b *strings.Builder) {
	var releases []unservedRelease
	for _, r := range t.Results {
		releases = append(releases, unservedRelease{Title: r.Kind.Title, Run: r.Run, Seconds: r.UnservedSeconds})
	}
	writeUnservedSeconds(b, "the change", releases)
}

func (t *classicReport) writeProblems(b *strings.Builder) {
	for _, res := range t.Results {
		if res.Completed {
			continue
		}
		fmt.Fprintf(b, "#### %s, run %d: did not finish\n\n```\n%s\n```\n\n", res.Kind.Title, res.Run, strings.TrimSpace(res.Problem))
	}
}

// classicSummary is what the benchmark prints at the end for the classic
// scenario.
func (r report) classicSummary(b *strings.Builder) {
	if r.Classic == nil {
		return
	}
	fmt.Fprintf(b, "Classic hosts (%d instances of %d apps on %d hosts, and the same as pods):\n\n", classicTotal, classicAppCount, len(r.Classic.Hosts))
	r.Classic.writeTables(b)
	r.Classic.writeHosts(b)
	r.Classic.writeUnserved(b)
	for _, res := range r.Classic.Results {
		if len(res.Errors) > 0 {
			fmt.Fprintf(b, "%s, run %d:%s\n", res.Kind.Title, res.Run, errorSamples(res.Errors))
		}
	}
}
