package main

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestEveryRunShowsItsCPUPerPodAndHowBusyTheMachineWas(t *testing.T) {
	g := NewWithT(t)
	s := shape{Replicas: 1000, BatchSize: 100, MaxUnavailable: 100, Zones: []string{"zone-a"}}
	// Two releases of 1000 pods: the slow one spent more CPU per pod (66 ms
	// against 50) on a machine as busy.
	fast, slow := cpuRun(25, 50, 49), cpuRun(33, 66, 65)
	slow.Run = 2
	r := report{Aggregates: []aggregate{aggregateRuns(scenario{Key: "deployment", Workload: deployment{shape: s}}, []runResult{fast, slow})}}

	var b strings.Builder
	r.writeRuns(&b)
	page := b.String()
	g.Expect(page).To(ContainSubstring("| CPU per pod | machine busy |"))
	g.Expect(page).To(ContainSubstring("| deployment | 0 | 25.0 s | 0.00 | 50.0 ms | 1.96 cores |"))
	g.Expect(page).To(ContainSubstring("| deployment | 2 | 33.0 s | 0.00 | 66.0 ms | 1.97 cores |"))
}
