package plan

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

var abc = []string{"a", "b", "c"}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		spec    cafev1alpha1.CafeDeploymentSpec
		want    string
		wantErr string
	}{
		// Beta and batchSize.
		{
			name: "12 replicas over 3 zones with Beta and batchSize 3 release one pod per zone, then 3 pods spread over the zones",
			spec: newSpec(12, abc, batchSize(n(3))),
			want: "g0(beta) a=1 b=1 c=1 | g1 a=1 b=1 c=1 | g2 a=1 b=1 c=1 | g3 a=1 b=1 c=1",
		},
		{
			name: "Beta without batchSize releases every pod left in one group after the beta group",
			spec: newSpec(12, abc),
			want: "g0(beta) a=1 b=1 c=1 | g1 a=3 b=3 c=3",
		},
		{
			name: "a beta group that takes every pod is the only group",
			spec: newSpec(3, abc, batchSize(n(3))),
			want: "g0(beta) a=1 b=1 c=1",
		},
		{
			name: "unset replicas default to one pod, released as the beta group",
			spec: func() cafev1alpha1.CafeDeploymentSpec { s := newSpec(0, []string{"a"}); s.Replicas = nil; return s }(),
			want: "g0(beta) a=1",
		},
		// Batch.
		{
			name: "Batch with a batchSize of 25% of 10 replicas rounds up to groups of 3",
			spec: newSpec(10, abc, batch, batchSize(pct("25%"))),
			want: "g0 a=1 b=1 c=1 | g1 a=1 b=1 c=1 | g2 a=1 b=1 c=1 | g3 a=1",
		},
		{
			name: "Batch with a batchSize of 30% of 20 replicas over 2 zones takes 3 pods of each zone per group",
			spec: newSpec(20, []string{"a", "b"}, batch, batchSize(pct("30%"))),
			want: "g0 a=3 b=3 | g1 a=3 b=3 | g2 a=3 b=3 | g3 a=1 b=1",
		},
		{
			name: "Batch without batchSize releases every pod in one group",
			spec: newSpec(12, abc, batch),
			want: "g0 a=4 b=4 c=4",
		},
		{
			name: "Batch with a batchSize of 0% still releases one pod per group",
			spec: newSpec(2, abc, batch, batchSize(pct("0%"))),
			want: "g0 a=1 | g1 b=1",
		},
		{
			name: "a group that cannot split evenly gives its extra pods to the first units on equal remainders",
			spec: newSpec(3, abc, batch, batchSize(n(2))),
			want: "g0 a=1 b=1 | g1 c=1",
		},
		// Uneven units.
		{
			name: "uneven unitReplicas are released in proportion to the pods each unit has left",
			spec: newSpec(10, abc, pin("a", n(6)), pin("b", n(3)), pin("c", n(1)), batchSize(n(4))),
			want: "g0(beta) a=1 b=1 c=1 | g1 a=3 b=1 | g2 a=2 b=1",
		},
		{
			name: "a unit pinned at 50% is released faster than the units that share the rest",
			spec: newSpec(10, abc, pin("a", pct("50%")), batch, batchSize(n(2))),
			want: "g0 a=1 b=1 | g1 a=1 b=1 | g2 a=1 c=1 | g3 a=1 b=1 | g4 a=1 c=1",
		},
		// Units with no replicas.
		{
			name: "zero replicas give an empty plan",
			spec: newSpec(0, abc, batchSize(n(3))),
			want: "no groups",
		},
		{
			name: "zero replicas give an empty plan even with custom groups",
			spec: newSpec(0, abc, groups(group(n(2)))),
			want: "no groups",
		},
		{
			name: "a unit with zero replicas gets no beta pod and appears in no group",
			spec: newSpec(6, abc, pin("b", n(0)), batchSize(n(2))),
			want: "g0(beta) a=1 c=1 | g1 a=1 c=1 | g2 a=1 c=1",
		},
		{
			name: "a unit with zero replicas is skipped in UnitByUnit order",
			spec: newSpec(6, abc, pin("b", n(0)), unitByUnit, batchSize(n(2))),
			want: "g0(beta) a=1 | g1 a=2 | g2 c=2 | g3 c=1",
		},
		{
			name: "in UnitByUnit order the beta pod comes from the first unit that has replicas",
			spec: newSpec(4, abc, pin("a", n(0)), unitByUnit),
			want: "g0(beta) b=1 | g1 b=1 | g2 c=2",
		},
		// Custom groups.
		{
			name: "custom groups with units take their pods from those units only",
			spec: newSpec(12, abc, batch, groups(group(n(2), "a"), group(pct("50%"), "a", "b"), group(pct("100%")))),
			want: "g0 a=2 | g1 a=2 b=4 | g2 c=4",
		},
		{
			name: "custom groups come after the beta group",
			spec: newSpec(12, abc, groups(group(n(3), "a"), group(n(6)))),
			want: "g0(beta) a=1 b=1 c=1 | g1 a=3 | g2 b=3 c=3",
		},
		{
			name: "custom groups override batchSize",
			spec: newSpec(12, abc, batch, batchSize(n(1)), groups(group(n(6)), group(n(6)))),
			want: "g0 a=2 b=2 c=2 | g1 a=2 b=2 c=2",
		},
		{
			name: "custom group percentages round up, so that 33%, 33% and 34% cover 10 replicas",
			spec: newSpec(10, abc, batch, groups(group(pct("33%")), group(pct("33%")), group(pct("34%")))),
			want: "g0 a=2 b=1 c=1 | g1 a=2 b=1 c=1 | g2 b=1 c=1",
		},
		{
			name: "custom groups that cover more than every replica are clipped and the groups past the end vanish",
			spec: newSpec(12, abc, batch, groups(group(pct("50%")), group(pct("50%")), group(pct("50%")))),
			want: "g0 a=2 b=2 c=2 | g1 a=2 b=2 c=2",
		},
		{
			name: "a custom group whose units have no pod left is skipped",
			spec: newSpec(6, abc, batch, groups(group(n(2), "a"), group(n(1), "a"), group(n(4)))),
			want: "g0 a=2 | g1 b=2 c=2",
		},
		{
			name:    "custom groups that do not cover every replica are rejected, naming the field",
			spec:    newSpec(12, abc, batch, groups(group(n(5)), group(n(5)))),
			wantErr: "spec.strategy.groups: groups cover 10 of 12 replicas",
		},
		{
			name:    "custom groups count the replicas left after the beta group",
			spec:    newSpec(12, abc, groups(group(n(3)), group(n(3)), group(n(2)))),
			wantErr: "spec.strategy.groups: groups cover 8 of 9 replicas (spec.replicas 12 less 3 in the beta group)",
		},
		{
			name:    "custom groups whose units leave a unit out are rejected, even when their sizes add up",
			spec:    newSpec(12, abc, batch, groups(group(pct("100%"), "a", "b"), group(n(4), "a"))),
			wantErr: "spec.strategy.groups: groups cover 8 of 12 replicas",
		},
		// UnitByUnit.
		{
			name: "UnitByUnit with Beta releases one pod of the first zone, then cuts batches at each zone's end",
			spec: newSpec(12, abc, unitByUnit, batchSize(n(3))),
			want: "g0(beta) a=1 | g1 a=3 | g2 b=3 | g3 b=1 | g4 c=3 | g5 c=1",
		},
		{
			name: "UnitByUnit with Batch and no batchSize releases one whole zone per group",
			spec: newSpec(12, abc, unitByUnit, batch),
			want: "g0 a=4 | g1 b=4 | g2 c=4",
		},
		{
			name: "UnitByUnit splits a custom group at a zone's end so that its pods stay covered",
			spec: newSpec(12, abc, unitByUnit, batch, groups(group(n(6)), group(n(6)))),
			want: "g0 a=4 | g1 b=2 | g2 b=2 | g3 c=4",
		},
		{
			name: "UnitByUnit finishes the zone a custom group started before it starts the next one",
			spec: newSpec(12, abc, unitByUnit, batch, groups(group(n(2), "c"), group(pct("100%")))),
			want: "g0 c=2 | g1 c=2 | g2 a=4 | g3 b=4",
		},
		{
			name: "UnitByUnit with Beta and custom groups finishes the beta zone first",
			spec: newSpec(12, abc, unitByUnit, groups(group(pct("25%")), group(pct("100%")))),
			want: "g0(beta) a=1 | g1 a=3 | g2 b=4 | g3 c=4",
		},
		// Malformed specs.
		{
			name:    "negative replicas are rejected",
			spec:    newSpec(-1, abc),
			wantErr: "spec.replicas: -1 is negative",
		},
		{
			name:    "unitReplicas asking for more pods than replicas are rejected",
			spec:    newSpec(3, abc, pin("a", n(4))),
			wantErr: "spec.topology: topology.unitReplicas asks for 4 pods, more than the 3 replicas",
		},
		{
			name:    "a topology without units is rejected",
			spec:    newSpec(3, nil),
			wantErr: "spec.topology: topology.values is empty",
		},
		{
			name:    "an unknown upgradeType is rejected",
			spec:    newSpec(3, abc, func(s *cafev1alpha1.CafeDeploymentSpec) { s.Strategy.UpgradeType = "Canary" }),
			wantErr: `spec.strategy.upgradeType: unknown value "Canary", want Beta or Batch`,
		},
		{
			name:    "an unknown groupOrder is rejected",
			spec:    newSpec(3, abc, func(s *cafev1alpha1.CafeDeploymentSpec) { s.Strategy.GroupOrder = "Random" }),
			wantErr: `spec.strategy.groupOrder: unknown value "Random", want Interleaved or UnitByUnit`,
		},
		{
			name:    "a malformed batchSize is rejected, even with zero replicas",
			spec:    newSpec(0, abc, batchSize(pct("150%"))),
			wantErr: "spec.strategy.batchSize: ",
		},
		{
			name:    "a negative custom group size is rejected",
			spec:    newSpec(3, abc, groups(group(n(-1)))),
			wantErr: "spec.strategy.groups[0].replicas: -1 is negative",
		},
		{
			name:    "a custom group naming an unknown unit is rejected",
			spec:    newSpec(3, abc, groups(group(n(1)), group(n(2), "d"))),
			wantErr: `spec.strategy.groups[1].units: unknown unit "d", not in spec.topology.values`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p, err := New(tt.spec)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(HavePrefix(tt.wantErr)))
				var specErr *SpecError
				g.Expect(errors.As(err, &specErr)).To(BeTrue())
				g.Expect(tt.wantErr).To(HavePrefix(specErr.Field + ": "))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.String()).To(Equal(tt.want))
			expectInvariants(g, tt.spec, p)
		})
	}
}

func TestNewGivesExactPodsPerUnit(t *testing.T) {
	g := NewWithT(t)
	p, err := New(newSpec(12, abc, batchSize(n(3))))
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(p.Units).To(Equal(abc))
	g.Expect(p.UnitReplicas).To(Equal(map[string]int32{"a": 4, "b": 4, "c": 4}))
	g.Expect(p.Total()).To(Equal(int32(12)))
	g.Expect(p.Groups).To(Equal([]Group{
		{Index: 0, Beta: true, Pods: units(1, 1, 1), Cumulative: units(1, 1, 1)},
		{Index: 1, Pods: units(1, 1, 1), Cumulative: units(2, 2, 2)},
		{Index: 2, Pods: units(1, 1, 1), Cumulative: units(3, 3, 3)},
		{Index: 3, Pods: units(1, 1, 1), Cumulative: units(4, 4, 4)},
	}))
}

func TestUpdatedTargetAndPartition(t *testing.T) {
	p, err := New(newSpec(12, abc, unitByUnit, batchSize(n(3))))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	// g0(beta) a=1 | g1 a=3 | g2 b=3 | g3 b=1 | g4 c=3 | g5 c=1
	tests := []struct {
		name          string
		groupIndex    int
		wantUpdated   map[string]int32
		wantPartition map[string]int32
	}{
		{name: "before any group no pod is updated", groupIndex: -1, wantUpdated: units(0, 0, 0), wantPartition: units(4, 4, 4)},
		{name: "an index below -1 is before any group too", groupIndex: -7, wantUpdated: units(0, 0, 0), wantPartition: units(4, 4, 4)},
		{name: "after the beta group one pod of the first zone is updated", groupIndex: 0, wantUpdated: units(1, 0, 0), wantPartition: units(3, 4, 4)},
		{name: "after the first zone's last group the zone is fully updated", groupIndex: 1, wantUpdated: units(4, 0, 0), wantPartition: units(0, 4, 4)},
		{name: "midway through the second zone only that zone moves", groupIndex: 2, wantUpdated: units(4, 3, 0), wantPartition: units(0, 1, 4)},
		{name: "after the last group every pod is updated", groupIndex: 5, wantUpdated: units(4, 4, 4), wantPartition: units(0, 0, 0)},
		{name: "an index past the last group is the end of the release", groupIndex: 6, wantUpdated: units(4, 4, 4), wantPartition: units(0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(p.UpdatedTarget(tt.groupIndex)).To(Equal(tt.wantUpdated))
			g.Expect(Partition(p, tt.groupIndex)).To(Equal(tt.wantPartition))
		})
	}
}

func TestEmptyPlanTargetsAndPartitionsAreZero(t *testing.T) {
	g := NewWithT(t)
	p, err := New(newSpec(0, abc))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Groups).To(BeEmpty())
	g.Expect(p.Total()).To(BeZero())
	g.Expect(p.UnitReplicas).To(Equal(units(0, 0, 0)))
	for _, i := range []int{-1, 0, 3} {
		g.Expect(p.UpdatedTarget(i)).To(Equal(units(0, 0, 0)))
		g.Expect(Partition(p, i)).To(Equal(units(0, 0, 0)))
	}
}

func TestNewDoesNotMutateItsArgument(t *testing.T) {
	g := NewWithT(t)
	spec := newSpec(12, abc, groups(group(pct("50%"), "a"), group(pct("100%"))))
	spec.Replicas = nil
	before := spec.DeepCopy()

	first, err := New(spec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(&spec).To(Equal(before), "New must work on a defaulted copy")
	second, err := New(spec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(Equal(first), "the same spec must give the same plan")
}

// TestNewInvariantsOverRandomSpecs plans many random specs (with a fixed
// seed, so a failure reproduces) and checks the package invariants on every
// plan, and that only custom groups can make a valid topology fail.
func TestNewInvariantsOverRandomSpecs(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260801, 1))
	var planned, rejected int
	for i := range 5000 {
		spec := randomSpec(rng)
		g := NewWithT(t)
		desc := fmt.Sprintf("spec #%d: %s", i, describe(spec))
		p, err := New(spec)
		if err != nil {
			var specErr *SpecError
			g.Expect(errors.As(err, &specErr)).To(BeTrue(), desc)
			g.Expect(specErr.Field).To(Equal("spec.strategy.groups"), desc)
			g.Expect(spec.Strategy.Groups).NotTo(BeEmpty(), desc)
			rejected++
			continue
		}
		planned++
		expectInvariants(g, spec, p, desc)
		again, err := New(spec)
		g.Expect(err).NotTo(HaveOccurred(), desc)
		g.Expect(again).To(Equal(p), "same spec, same plan: "+desc)
	}
	// Make sure the generator exercises both outcomes.
	NewWithT(t).Expect(planned).To(BeNumerically(">", 1000))
	NewWithT(t).Expect(rejected).To(BeNumerically(">", 50))
	t.Logf("Planned %d specs, rejected %d", planned, rejected)
}

// expectInvariants checks what doc.go promises of every plan of spec.
func expectInvariants(g *WithT, spec cafev1alpha1.CafeDeploymentSpec, p Plan, description ...any) {
	desc := fmt.Sprint(description...) + "\nplan: " + p.String()
	replicas := ptr.Deref(spec.Replicas, cafev1alpha1.DefaultReplicas)
	st := spec.Strategy
	beta := st.UpgradeType != cafev1alpha1.UpgradeTypeBatch
	byUnit := st.GroupOrder == cafev1alpha1.GroupOrderUnitByUnit

	g.Expect(p.Units).To(Equal(spec.Topology.Values), desc)
	g.Expect(p.UnitReplicas).To(HaveLen(len(p.Units)), desc)
	g.Expect(p.Total()).To(Equal(replicas), desc)
	if replicas == 0 {
		g.Expect(p.Groups).To(BeEmpty(), desc)
	} else {
		g.Expect(p.Groups).NotTo(BeEmpty(), desc)
	}
	g.Expect(p.UpdatedTarget(-1)).To(Equal(zeros(p.Units)), desc)

	prev := zeros(p.Units)
	var seen []string // units in the order groups first touch them
	for i, grp := range p.Groups {
		gdesc := fmt.Sprintf("group %d of %s", i, desc)
		g.Expect(grp.Index).To(Equal(i), gdesc)
		g.Expect(grp.Beta).To(Equal(beta && i == 0), gdesc)

		var size int32
		for u, n := range grp.Pods {
			g.Expect(p.Units).To(ContainElement(u), gdesc)
			g.Expect(n).To(BeNumerically(">", 0), gdesc)
			size += n
		}
		g.Expect(size).To(BeNumerically(">=", 1), gdesc)
		if byUnit {
			g.Expect(grp.Pods).To(HaveLen(1), "UnitByUnit groups hold one unit: "+gdesc)
		}
		if grp.Beta {
			expectBetaGroup(g, p, grp, byUnit, gdesc)
		}

		g.Expect(grp.Cumulative).To(HaveLen(len(p.Units)), gdesc)
		for _, u := range p.Units {
			g.Expect(grp.Cumulative[u]).To(Equal(prev[u]+grp.Pods[u]), gdesc)
			g.Expect(grp.Cumulative[u]).To(BeNumerically(">=", prev[u]), gdesc)
			g.Expect(grp.Cumulative[u]).To(BeNumerically("<=", p.UnitReplicas[u]), gdesc)
			if grp.Pods[u] > 0 && !slices.Contains(seen, u) {
				seen = append(seen, u)
			}
		}
		g.Expect(p.UpdatedTarget(i)).To(Equal(grp.Cumulative), gdesc)
		partition := Partition(p, i)
		for _, u := range p.Units {
			g.Expect(partition[u]+grp.Cumulative[u]).To(Equal(p.UnitReplicas[u]), gdesc)
		}

		if len(st.Groups) == 0 && !grp.Beta {
			expectBatchSize(g, spec, p, grp, prev, byUnit, gdesc)
		}
		if byUnit && noUnitRestriction(st.Groups) {
			// A unit is finished before the next one starts.
			for _, u := range seen[:len(seen)-1] {
				g.Expect(grp.Cumulative[u]).To(Equal(p.UnitReplicas[u]), "unit %s left unfinished: %s", u, gdesc)
			}
		}
		prev = grp.Cumulative
	}
	if len(p.Groups) > 0 {
		g.Expect(p.Groups[len(p.Groups)-1].Cumulative).To(Equal(p.UnitReplicas), desc)
	}
}

// expectBetaGroup checks the shape of the beta group: one pod of every unit
// with replicas, or of the first one only in UnitByUnit order.
func expectBetaGroup(g *WithT, p Plan, grp Group, byUnit bool, desc string) {
	want := map[string]int32{}
	for _, u := range p.Units {
		if p.UnitReplicas[u] > 0 {
			want[u] = 1
			if byUnit {
				break
			}
		}
	}
	g.Expect(grp.Pods).To(Equal(want), desc)
}

// expectBatchSize checks that a group formed from batchSize is as large as
// it may be: batchSize pods, or fewer only at the end of the release (or of
// the unit, in UnitByUnit order).
func expectBatchSize(g *WithT, spec cafev1alpha1.CafeDeploymentSpec, p Plan, grp Group, before map[string]int32, byUnit bool, desc string) {
	var left, size int32
	for _, u := range p.Units {
		left += p.UnitReplicas[u] - before[u]
		size += grp.Pods[u]
	}
	batch := left // unset batchSize: every pod left
	if spec.Strategy.BatchSize != nil {
		bs, err := cafev1alpha1.ResolveIntOrPercent(*spec.Strategy.BatchSize, p.Total(), true)
		g.Expect(err).NotTo(HaveOccurred(), desc)
		batch = max(bs, 1)
	}
	if byUnit {
		for u := range grp.Pods {
			left = p.UnitReplicas[u] - before[u]
		}
	}
	g.Expect(size).To(Equal(min(batch, left)), desc)
}

func noUnitRestriction(groups []cafev1alpha1.ReleaseGroup) bool {
	for _, grp := range groups {
		if len(grp.Units) > 0 {
			return false
		}
	}
	return true
}

// randomSpec builds a spec with a valid topology and a random strategy.
func randomSpec(rng *rand.Rand) cafev1alpha1.CafeDeploymentSpec {
	unitNames := []string{"a", "b", "c", "d", "e"}[:1+rng.IntN(5)]
	replicas := int32(rng.IntN(31))
	var opts []option
	pinned := map[string]intstr.IntOrString{}
	for _, u := range unitNames {
		switch rng.IntN(6) {
		case 0:
			pinned[u] = n(int32(rng.IntN(int(replicas)/len(unitNames) + 1)))
		case 1:
			pinned[u] = pct(fmt.Sprintf("%d%%", 10*rng.IntN(5)))
		}
	}
	if _, err := cafev1alpha1.SplitReplicas(replicas, cafev1alpha1.Topology{Values: unitNames, UnitReplicas: pinned}); err == nil {
		for u, v := range pinned {
			opts = append(opts, pin(u, v))
		}
	}
	if rng.IntN(2) == 0 {
		opts = append(opts, batch)
	}
	if rng.IntN(2) == 0 {
		opts = append(opts, unitByUnit)
	}
	switch rng.IntN(3) {
	case 0:
		opts = append(opts, batchSize(n(int32(1+rng.IntN(8)))))
	case 1:
		opts = append(opts, batchSize(pct(fmt.Sprintf("%d%%", 1+rng.IntN(100)))))
	}
	if rng.IntN(3) == 0 {
		var gs []cafev1alpha1.ReleaseGroup
		for range 1 + rng.IntN(5) {
			size := n(int32(1 + rng.IntN(10)))
			if rng.IntN(2) == 0 {
				size = pct(fmt.Sprintf("%d%%", 10*(1+rng.IntN(6))))
			}
			var restrict []string
			if rng.IntN(3) == 0 {
				for _, u := range unitNames {
					if rng.IntN(2) == 0 {
						restrict = append(restrict, u)
					}
				}
			}
			gs = append(gs, group(size, restrict...))
		}
		opts = append(opts, groups(gs...))
	}
	return newSpec(replicas, unitNames, opts...)
}

func describe(s cafev1alpha1.CafeDeploymentSpec) string {
	out := fmt.Sprintf("replicas=%d units=%v unitReplicas=%v upgradeType=%q groupOrder=%q",
		ptr.Deref(s.Replicas, -1), s.Topology.Values, s.Topology.UnitReplicas, s.Strategy.UpgradeType, s.Strategy.GroupOrder)
	if s.Strategy.BatchSize != nil {
		out += " batchSize=" + s.Strategy.BatchSize.String()
	}
	for _, grp := range s.Strategy.Groups {
		out += fmt.Sprintf(" group(%s %v)", grp.Replicas.String(), grp.Units)
	}
	return out
}

// Spec builders.

type option func(*cafev1alpha1.CafeDeploymentSpec)

func newSpec(replicas int32, unitNames []string, opts ...option) cafev1alpha1.CafeDeploymentSpec {
	s := cafev1alpha1.CafeDeploymentSpec{
		Replicas: ptr.To(replicas),
		Topology: cafev1alpha1.Topology{Values: unitNames},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func batch(s *cafev1alpha1.CafeDeploymentSpec) {
	s.Strategy.UpgradeType = cafev1alpha1.UpgradeTypeBatch
}

func unitByUnit(s *cafev1alpha1.CafeDeploymentSpec) {
	s.Strategy.GroupOrder = cafev1alpha1.GroupOrderUnitByUnit
}

func batchSize(v intstr.IntOrString) option {
	return func(s *cafev1alpha1.CafeDeploymentSpec) { s.Strategy.BatchSize = &v }
}

func pin(unit string, v intstr.IntOrString) option {
	return func(s *cafev1alpha1.CafeDeploymentSpec) {
		if s.Topology.UnitReplicas == nil {
			s.Topology.UnitReplicas = map[string]intstr.IntOrString{}
		}
		s.Topology.UnitReplicas[unit] = v
	}
}

func groups(gs ...cafev1alpha1.ReleaseGroup) option {
	return func(s *cafev1alpha1.CafeDeploymentSpec) { s.Strategy.Groups = gs }
}

func group(replicas intstr.IntOrString, unitNames ...string) cafev1alpha1.ReleaseGroup {
	return cafev1alpha1.ReleaseGroup{Replicas: replicas, Units: unitNames}
}

func n(i int32) intstr.IntOrString { return intstr.FromInt32(i) }

func pct(s string) intstr.IntOrString { return intstr.FromString(s) }

// units maps a, b and c to the given counts.
func units(a, b, c int32) map[string]int32 { return map[string]int32{"a": a, "b": b, "c": c} }

func zeros(unitNames []string) map[string]int32 {
	m := make(map[string]int32, len(unitNames))
	for _, u := range unitNames {
		m[u] = 0
	}
	return m
}

func TestSingleGroupReleasesEveryPodAtOnce(t *testing.T) {
	g := NewWithT(t)
	p, err := New(cafev1alpha1.CafeDeploymentSpec{
		Replicas: ptr.To[int32](7),
		Topology: cafev1alpha1.Topology{Values: []string{"a", "b", "c"}},
		Strategy: cafev1alpha1.CafeDeploymentStrategy{BatchSize: ptr.To(intstr.FromInt32(1))},
	})
	g.Expect(err).NotTo(HaveOccurred())
	fast := p.SingleGroup()
	g.Expect(fast.Groups).To(HaveLen(1))
	g.Expect(fast.Groups[0].Cumulative).To(Equal(p.UnitReplicas))
	g.Expect(fast.Total()).To(Equal(int32(7)))
	g.Expect(Partition(fast, 0)).To(Equal(map[string]int32{"a": 0, "b": 0, "c": 0}))
}

func TestFlowsPastOnlyWhereThePlanSetsNoBarrier(t *testing.T) {
	g := NewWithT(t)
	interleaved, err := New(newSpec(12, abc, batchSize(n(3))))
	g.Expect(err).NotTo(HaveOccurred())
	// g0(beta) a=1 b=1 c=1 | g1 a=1 b=1 c=1 | g2 … | g3 …
	g.Expect(interleaved.FlowsPast(0)).To(BeFalse(), "the end of the beta group is a barrier")
	g.Expect(interleaved.FlowsPast(1)).To(BeTrue())
	g.Expect(interleaved.FlowsPast(2)).To(BeTrue())
	g.Expect(interleaved.FlowsPast(3)).To(BeFalse(), "the last group flows nowhere")
	g.Expect(interleaved.FlowsPast(-1)).To(BeFalse())
	g.Expect(interleaved.Size(1)).To(Equal(int32(3)))
	g.Expect(interleaved.Size(4)).To(BeZero())

	byUnit, err := New(newSpec(12, abc, unitByUnit, batchSize(n(3))))
	g.Expect(err).NotTo(HaveOccurred())
	// g0(beta) a=1 | g1 a=3 | g2 b=3 | g3 b=1 | g4 c=3 | g5 c=1
	g.Expect(byUnit.UnitByUnit).To(BeTrue())
	g.Expect(byUnit.FlowsPast(1)).To(BeFalse(), "UnitByUnit: the next group is in another unit")
	g.Expect(byUnit.FlowsPast(2)).To(BeTrue(), "UnitByUnit: the next group is in the same unit")
	g.Expect(byUnit.FlowsPast(3)).To(BeFalse())
	g.Expect(byUnit.SingleGroup().UnitByUnit).To(BeTrue())
}
