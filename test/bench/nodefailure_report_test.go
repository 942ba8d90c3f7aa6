package main

import (
	"strings"
	"testing"
	"time"
)

func nodeFailureRun(key string, ready time.Duration) nodeFailureResult {
	var v nodeFailureVariant
	for _, x := range nodeFailureVariants() {
		if x.Key == key {
			v = x
		}
	}
	return nodeFailureResult{
		Variant: v, Run: 1, Completed: true, Took: 2 * ready, Lost: 2, Replicas: nodeFailureReplicas, SameZone: true,
		ReadyElsewhere: ready, VictimEmptied: ready + time.Second, NotReady: 50 * time.Second, Suspect: 30 * time.Second,
		Failed: 60 * time.Second, FirstMoved: 61 * time.Second, LowestReady: 16,
	}
}

func TestNodeFailureSectionReportsEveryVariantAndTheSpeedUp(t *testing.T) {
	bad := nodeFailureRun("cafe-node-down", 40*time.Second)
	bad.Lossless = []string{"[lossless] event #7: deleted while listed ready"}
	unfinished := nodeFailureRun("upstream", 0)
	unfinished.Run, unfinished.Completed, unfinished.Problem = 2, false, "the pods were not Ready elsewhere"
	r := report{Runs: 2, Nodes: 100, Shape: shape{Zones: []string{"zone-a"}}, NodeFailures: []nodeFailureResult{
		nodeFailureRun("cafe", 61*time.Second), nodeFailureRun("upstream", 350*time.Second), bad, unfinished,
	}}
	page := r.markdown()
	for _, want := range []string{
		"## Node failure: heartbeat loss to pods Ready elsewhere (issue 6)",
		"One local control plane", // no release scenario ran: the method says where
		"| CAFE (default policy) | 1 | **61.0 s** | 62.0 s |",
		"| upstream controller alone (defaults) | 1 | **350.0 s** |",
		"| upstream controller alone (defaults) | 2 | did not finish within 15m0s |",
		"**1 violation(s)** (below)",
		"deleted while listed ready",
		"the pods were not Ready elsewhere",
		"after 61.0 s, the upstream controller alone after 350.0 s: 5.7× sooner",
		"CAFE needed 40.0 s (8.8× sooner",
		"the upstream baseline 11m40s of it",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "\n## Results") || strings.Contains(page, "\n## Targets") {
		t.Errorf("no release scenario ran, yet the page has release sections:\n%s", page)
	}
}
