package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// writeNodeFailures writes the node-failure section: method, results and
// what the invariant checkers found.
func (r report) writeNodeFailures(b *strings.Builder) {
	if len(r.NodeFailures) == 0 {
		return
	}
	fmt.Fprintf(b, "## Node failure: heartbeat loss to pods Ready elsewhere (issue 6)\n\n")
	fmt.Fprintf(b, "### Method\n\n")
	var took, upstream time.Duration
	for _, res := range r.NodeFailures {
		took += res.Took
		if res.Variant.Key == "upstream" {
			upstream += res.Took
		}
	}
	zones := strings.Join(nodeFailureZones, ", ")
	where := "The same control plane and cafe manager process as the release scenarios above, after them"
	if len(r.Aggregates) == 0 {
		where = fmt.Sprintf("One local control plane (`internal/controlplane`, as `cafe dev up` starts it) on a fresh state directory, with CAFE's controllers as a separate `%s` process", r.managerCommand())
	}
	lines := []string{
		fmt.Sprintf("%s (%d kwok nodes in %s; kube-controller-manager and kube-scheduler at client QPS %d / burst %d). Each variant registers its own %d kwok nodes, %d in each of the zones %s, tainted `%s:NoSchedule` so that no other pod lands there, and deletes them (with their Leases) afterwards, so the cluster's other nodes are never touched.",
			where, r.Nodes, strings.Join(r.Shape.Zones, ", "), controlplane.DefaultClientQPS, 2*controlplane.DefaultClientQPS, nodeFailureNodesPerZone*len(nodeFailureZones), nodeFailureNodesPerZone, zones, nodeFailureTaint),
		fmt.Sprintf("The app: a CafeDeployment (podSetType InPlaceSet, topology Zone %s, %d replicas, `minAvailable: %d`) whose pods tolerate that taint, behind a Service. The benchmark waits (watching) until every pod is Ready, the CafeDeployment reports its release Completed and the EndpointSlices list all %d ready.", strings.Join(nodeFailureZones, "/"), nodeFailureReplicas, nodeFailureMinAvailable, nodeFailureReplicas),
		fmt.Sprintf("Then the heartbeats of the node of %s running most of the pods stop: kwok's `%s` annotation is removed (kwok stops updating the node's status) and its Lease in `kube-node-lease` is handed to another holder for an hour with one last renewal (kwok v0.8.0 would otherwise go on renewing it; kube-controller-manager v1.37 never judges a node whose live Lease changed without its `renewTime` advancing). **That last renewal is time 0.**", nodeFailureZones[0], controlplane.KwokNodeAnnotation),
		fmt.Sprintf("**Pods Ready elsewhere** is from time 0 until the benchmark's watch of the app's pods first sees %d of them Ready, not terminating, on other nodes than the failed one: the lost pods' replacements serve. **Failed node emptied** is until, besides, none of the failed node's pods is left without its deletion begun (they stay Terminating: no kubelet confirms the deletion of a dead node's pods; the benchmark deletes the node at the end). The replacements' nodes must be in the failed node's zone (the \"moved\" column). The milestones are when a watch of the failed node first saw: its `Ready` condition no longer True (the upstream controller, after `node-monitor-grace-period`), CAFE's verdict in its `cafe.io/NodeHealthy` condition turn Suspect and Failed (in Observe mode CAFE still judges); \"first pod moved\" is when the pods' watch first saw one of the node's pods with CAFE's migration request or a deletion (the upstream eviction).", nodeFailureReplicas),
		fmt.Sprintf("**Invariants** come from the API server's watch stream of the namespace's pods and EndpointSlices, recorded from before the heartbeats stop (`test/framework/watchrec`, the e2e tests' checkers): the water level (never fewer than minAvailable = %d pods Ready and not terminating) and the lossless protocol (no pod deleted or changed while an EndpointSlice lists it ready or serving, or a `traffic.cafe.io/*` finalizer holds it). \"Fewest Ready\" is the lowest count after any event of the stream; the pods of a failed node turn not Ready when the upstream controller marks the node NotReady, so it is %d minus the pods lost at best.", nodeFailureMinAvailable, nodeFailureReplicas),
		"Both controllers run as configured out of the box: kube-controller-manager v1.37.2 with its node lifecycle defaults (`node-monitor-grace-period` 50 s; the DefaultTolerationSeconds admission plugin gives every pod a 300 s toleration of `node.kubernetes.io/unreachable:NoExecute`, after which the taint-eviction controller deletes it); CAFE with the default NodeLifecyclePolicy (Lease stale after 20 s; Suspect when one signal is bad for 10 s, Failed when two are for 10 s; at most 30 migrations a minute; the zone guard trips when more than 50% of a zone's nodes turn bad within 120 s, which one node of three does not). CAFE's variants and the upstream one differ only in the policy's mode.",
		fmt.Sprintf("One run per variant (×%d with -runs); the times hinge on the controllers' fixed delays (20 s, 50 s, 300 s), not on the machine's speed. The variants took %s of this benchmark's run in all, the upstream baseline %s of it.", r.Runs, took.Round(time.Second), upstream.Round(time.Second)),
	}
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", l)
	}
	fmt.Fprintf(b, "\nThe variants (`-node-failure-variants`):\n\n")
	done := map[string]bool{}
	for _, res := range r.NodeFailures {
		if done[res.Variant.Key] {
			continue
		}
		done[res.Variant.Key] = true
		fmt.Fprintf(b, "- **%s** (`%s`): %s.\n", res.Variant.Title, res.Variant.Key, res.Variant.Describe)
	}
	fmt.Fprintf(b, "\n### Results\n\n")
	r.writeNodeFailureTable(b)
	for _, res := range r.NodeFailures {
		if !res.Completed {
			fmt.Fprintf(b, "#### %s, run %d: did not finish\n\n```\n%s\n```\n\n", res.Variant.Title, res.Run, strings.TrimSpace(res.Problem))
			continue
		}
		if len(res.WaterLevel)+len(res.Lossless)+len(res.WrongZone) == 0 {
			continue
		}
		fmt.Fprintf(b, "#### %s, run %d: findings\n\n", res.Variant.Title, res.Run)
		for _, f := range append(append(append([]string{}, res.WrongZone...), res.WaterLevel...), res.Lossless...) {
			fmt.Fprintf(b, "- %s\n", f)
		}
		fmt.Fprintln(b)
	}
}

// writeNodeFailureTable writes one row per variant and run, and how much
// sooner CAFE was.
func (r report) writeNodeFailureTable(b *strings.Builder) {
	if len(r.NodeFailures) == 0 {
		return
	}
	fmt.Fprintf(b, "| variant | run | heartbeat loss → pods Ready elsewhere | failed node emptied | upstream NotReady | CAFE Suspect | CAFE Failed | first pod moved | pods moved (same zone) | fewest Ready (minAvailable %d) | water level | lossless |\n", nodeFailureMinAvailable)
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|\n")
	for _, res := range r.NodeFailures {
		if !res.Completed {
			fmt.Fprintf(b, "| %s | %d | did not finish within %s | | %s | %s | %s | %s | | | | |\n", res.Variant.Title, res.Run, nodeFailureTimeout,
				optSeconds(res.NotReady), optSeconds(res.Suspect), optSeconds(res.Failed), optSeconds(res.FirstMoved))
			continue
		}
		zone := "yes"
		if !res.SameZone {
			zone = "**no**"
		}
		fmt.Fprintf(b, "| %s | %d | **%s** | %s | %s | %s | %s | %s | %d of %d (%s) | %d | %s | %s |\n", res.Variant.Title, res.Run, seconds(res.ReadyElsewhere), seconds(res.VictimEmptied),
			optSeconds(res.NotReady), optSeconds(res.Suspect), optSeconds(res.Failed), optSeconds(res.FirstMoved),
			res.Lost, res.Replicas, zone, res.LowestReady, held(res.WaterLevel), held(res.Lossless))
	}
	fmt.Fprintln(b)
	cafe, upstream := medianRun(r.NodeFailures, "cafe"), medianRun(r.NodeFailures, "upstream")
	if cafe != nil && upstream != nil {
		fmt.Fprintf(b, "With heartbeat loss alone CAFE had the pods Ready elsewhere after %s, the upstream controller alone after %s: %.1f× sooner.", seconds(cafe.ReadyElsewhere), seconds(upstream.ReadyElsewhere), upstream.ReadyElsewhere.Seconds()/cafe.ReadyElsewhere.Seconds())
		if down := medianRun(r.NodeFailures, "cafe-node-down"); down != nil {
			fmt.Fprintf(b, " When the kubelet endpoint stops answering too, CAFE needed %s (%.1f× sooner than the upstream controller, which does not probe).", seconds(down.ReadyElsewhere), upstream.ReadyElsewhere.Seconds()/down.ReadyElsewhere.Seconds())
		}
		fmt.Fprintf(b, "\n\n")
	}
}

// fastest is the completed run of the variant with the median time.
func medianRun(results []nodeFailureResult, key string) *nodeFailureResult {
	var done []nodeFailureResult
	for _, res := range results {
		if res.Variant.Key == key && res.Completed {
			done = append(done, res)
		}
	}
	if len(done) == 0 {
		return nil
	}
	slices.SortFunc(done, func(x, y nodeFailureResult) int { return int(x.ReadyElsewhere - y.ReadyElsewhere) })
	return &done[(len(done)-1)/2]
}

func held(violations []string) string {
	if len(violations) == 0 {
		return "held"
	}
	return fmt.Sprintf("**%d violation(s)** (below)", len(violations))
}
