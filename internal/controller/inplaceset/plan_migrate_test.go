package inplaceset

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/lossless"
)

func (p podState) migrating() podState { p.MigrateRequested = true; return p }

// A migration (the node lifecycle controller asking a pod of a failed node
// to move) creates the replacement first and drains the pod only when that
// cannot lower the set's availability: a sequence of plans, each fed the
// state the previous one produced.
func TestPlanMigration(t *testing.T) {
	tests := []struct {
		name          string
		in            planInput
		createUpdated int
		createCurrent int
		closeGate     []string
		deleted       []string
		blocked       bool
	}{
		{
			name:          "a serving migrating pod gets a replacement and keeps serving until it is available",
			in:            planInput{Replicas: 2, MaxUnavailable: 0, Now: now, Pods: []podState{serving("a").updated().migrating(), serving("b").updated()}},
			createUpdated: 1,
			blocked:       true,
		},
		{
			name:    "the replacement created but not yet ready still holds the drain",
			in:      planInput{Replicas: 2, MaxUnavailable: 0, Now: now, Pods: []podState{serving("a").updated().migrating(), serving("b").updated(), serving("c").updated().notReady()}},
			blocked: true,
		},
		{
			name:      "once the replacement is available the migrating pod is drained for deletion",
			in:        planInput{Replicas: 2, MaxUnavailable: 0, Now: now, Pods: []podState{serving("a").updated().migrating(), serving("b").updated(), serving("c").updated()}},
			closeGate: []string{"a:DrainForDelete"},
		},
		{
			name:    "a drained migrating pod is deleted and not replaced twice",
			in:      planInput{Replicas: 2, MaxUnavailable: 0, Now: now, Pods: []podState{serving("a").updated().migrating().draining(lossless.ReasonDrainForDelete, true), serving("b").updated(), serving("c").updated()}},
			deleted: []string{"a"},
		},
		{
			name:          "a migrating pod that serves nobody (its node failed) is drained at once, beside its replacement",
			in:            planInput{Replicas: 2, MaxUnavailable: 0, Now: now, Pods: []podState{serving("a").updated().migrating().notReady(), serving("b").updated()}},
			createUpdated: 1,
			closeGate:     []string{"a:DrainForDelete"},
		},
		{
			name: "a migrating pod that serves but is not yet available (minReadySeconds) waits for its replacement too",
			in: planInput{Replicas: 2, MaxUnavailable: 0, MinReadySeconds: 30 * time.Second, Now: now,
				Pods: []podState{serving("a").updated().migrating().readySince(now.Add(-5 * time.Second)), serving("b").updated()}},
			createUpdated: 1,
			blocked:       true,
		},
		{
			name:          "a pause does not hold a migration",
			in:            planInput{Replicas: 2, MaxUnavailable: 0, Paused: true, Now: now, Pods: []podState{serving("a").updated().migrating().notReady(), serving("b").updated()}},
			createUpdated: 1,
			closeGate:     []string{"a:DrainForDelete"},
		},
		{
			name:          "an old-revision migrating pod in a partitioned set is replaced at the current revision",
			in:            planInput{Replicas: 2, Partition: 2, MaxUnavailable: 1, Now: now, Pods: []podState{serving("a").migrating(), serving("b")}},
			createCurrent: 1,
			blocked:       true,
		},
		{
			name:      "two migrating pods are drained together once both replacements are available",
			in:        planInput{Replicas: 2, MaxUnavailable: 0, Now: now, Pods: []podState{serving("a").updated().migrating(), serving("b").updated().migrating(), serving("c").updated(), serving("d").updated()}},
			closeGate: []string{"a:DrainForDelete", "b:DrainForDelete"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			out := plan(tt.in)
			g.Expect(out.CreateUpdated).To(Equal(tt.createUpdated), "createUpdated")
			g.Expect(out.CreateCurrent).To(Equal(tt.createCurrent), "createCurrent")
			g.Expect(gateNames(out.CloseGate)).To(ConsistOf(tt.closeGate), "closeGate")
			g.Expect(names(out.Delete)).To(ConsistOf(tt.deleted), "deleted")
			g.Expect(names(out.UpdateInPlace)).To(BeEmpty(), "nothing is updated in place by a migration")
			g.Expect(out.Blocked != "").To(Equal(tt.blocked), "blocked: %q", out.Blocked)
		})
	}
}
