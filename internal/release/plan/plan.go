package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Plan is the ordered list of release groups of a CafeDeployment.
type Plan struct {
	// Units are the topology units, in the order of spec.topology.values.
	Units []string
	// UnitReplicas is the number of pods of each unit, one entry per unit.
	UnitReplicas map[string]int32
	// Groups are the release groups, in release order.
	Groups []Group
	// UnitByUnit is set when spec.strategy.groupOrder is UnitByUnit: no
	// two units may release at once.
	UnitByUnit bool
}

// Group is one release group.
type Group struct {
	// Index is the position of the group in Plan.Groups, from 0.
	Index int
	// Beta marks the beta group (always group 0 when present).
	Beta bool
	// Pods is the number of pods of each unit released by this group; only
	// units with at least one pod in the group are listed.
	Pods map[string]int32
	// Cumulative is the number of pods of each unit on the update revision
	// once this group is done, one entry per unit of the plan.
	Cumulative map[string]int32
}

// SpecError is a spec the planner cannot turn into a plan. Field is the path
// of the offending field (for example spec.strategy.groups), so that the
// webhook can report it where it belongs.
type SpecError struct {
	Field  string
	Detail string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Detail }

func specErrorf(field, format string, args ...any) error {
	return &SpecError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// New plans the release of spec, after applying the API defaults to a copy
// of it. It fails, with a [*SpecError], when the replicas cannot be split
// over the topology, when a strategy field is malformed, or when custom
// groups leave pods unplanned.
func New(spec cafev1alpha1.CafeDeploymentSpec) (Plan, error) {
	d := cafev1alpha1.CafeDeployment{Spec: *spec.DeepCopy()}
	d.Default()
	s := d.Spec
	replicas := *s.Replicas
	if replicas < 0 {
		return Plan{}, specErrorf("spec.replicas", "%d is negative", replicas)
	}
	// The CRD refuses both; an object admitted without that validation must
	// not make the planner (which runs in the webhooks too) allocate in
	// proportion to a number nobody checked.
	if replicas > cafev1alpha1.MaxReplicas {
		return Plan{}, specErrorf("spec.replicas", "%d is more than the %d CAFE supports", replicas, cafev1alpha1.MaxReplicas)
	}
	split, err := cafev1alpha1.SplitReplicas(replicas, s.Topology)
	if err != nil {
		return Plan{}, specErrorf("spec.topology", "%v", err)
	}
	st := s.Strategy
	if st.UpgradeType != cafev1alpha1.UpgradeTypeBeta && st.UpgradeType != cafev1alpha1.UpgradeTypeBatch {
		return Plan{}, specErrorf("spec.strategy.upgradeType", "unknown value %q, want Beta or Batch", st.UpgradeType)
	}
	if st.GroupOrder != cafev1alpha1.GroupOrderInterleaved && st.GroupOrder != cafev1alpha1.GroupOrderUnitByUnit {
		return Plan{}, specErrorf("spec.strategy.groupOrder", "unknown value %q, want Interleaved or UnitByUnit", st.GroupOrder)
	}
	// Resolve the sizes before planning, so that a malformed field is
	// reported even when there is nothing to release (zero replicas).
	var batch int32
	if st.BatchSize != nil {
		if batch, err = cafev1alpha1.ResolveIntOrPercent(*st.BatchSize, replicas, true); err != nil {
			return Plan{}, specErrorf("spec.strategy.batchSize", "%v", err)
		}
		batch = max(batch, 1)
		unitByUnit := st.GroupOrder == cafev1alpha1.GroupOrderUnitByUnit
		if len(st.Groups) == 0 && cafev1alpha1.ReleaseGroupsUpperBound(int64(replicas), int64(batch), st.UpgradeType == cafev1alpha1.UpgradeTypeBeta, unitByUnit, len(s.Topology.Values)) > cafev1alpha1.MaxReleaseGroups {
			return Plan{}, specErrorf("spec.strategy.batchSize", "%d replicas in batches of %d need more than the %d release groups status.release.groups can hold", replicas, batch, cafev1alpha1.MaxReleaseGroups)
		}
	}
	custom := make([]customGroup, len(st.Groups))
	for i, cg := range st.Groups {
		n, err := cafev1alpha1.ResolveIntOrPercent(cg.Replicas, replicas, true)
		if err != nil {
			return Plan{}, specErrorf(fmt.Sprintf("spec.strategy.groups[%d].replicas", i), "%v", err)
		}
		for _, u := range cg.Units {
			if !slices.Contains(s.Topology.Values, u) {
				return Plan{}, specErrorf(fmt.Sprintf("spec.strategy.groups[%d].units", i), "unknown unit %q, not in spec.topology.values", u)
			}
		}
		custom[i] = customGroup{size: max(n, 1), units: cg.Units}
	}

	p := newPlanner(s.Topology.Values, split, st.GroupOrder == cafev1alpha1.GroupOrderUnitByUnit)
	if replicas > 0 {
		if st.UpgradeType == cafev1alpha1.UpgradeTypeBeta {
			p.beta()
		}
		switch {
		case len(custom) > 0:
			if err := p.custom(custom, replicas); err != nil {
				return Plan{}, err
			}
		case st.BatchSize != nil:
			p.batches(batch)
		default:
			p.batches(p.left(p.units))
		}
	}
	if p.full {
		return Plan{}, specErrorf("spec.strategy", "the release needs more than the %d groups status.release.groups can hold", cafev1alpha1.MaxReleaseGroups)
	}
	return Plan{Units: slices.Clone(s.Topology.Values), UnitReplicas: split, Groups: p.groups, UnitByUnit: p.unitByUnit}, nil
}

// customGroup is a resolved entry of spec.strategy.groups.
type customGroup struct {
	size  int32
	units []string // empty means every unit
}

// planner accumulates groups. remaining holds the pods of each unit that no
// group has taken yet, updated the pods that groups have taken.
type planner struct {
	units      []string
	unitByUnit bool
	remaining  map[string]int32
	updated    map[string]int32
	groups     []Group
	// full is set when a group was refused because the plan already had
	// MaxReleaseGroups: the spec needs more than the status can record.
	full bool
}

func newPlanner(units []string, split map[string]int32, unitByUnit bool) *planner {
	p := &planner{
		units:      units,
		unitByUnit: unitByUnit,
		remaining:  make(map[string]int32, len(units)),
		updated:    make(map[string]int32, len(units)),
	}
	for _, u := range units {
		p.remaining[u] = split[u]
		p.updated[u] = 0
	}
	return p
}

// emit appends a group taking pods from the units, unless the plan is
// full; then it only takes the pods, so that the loops calling it end.
func (p *planner) emit(pods map[string]int32, beta bool) {
	if len(p.groups) >= cafev1alpha1.MaxReleaseGroups {
		p.full = true
	}
	for u, n := range pods {
		p.remaining[u] -= n
		p.updated[u] += n
	}
	if p.full {
		return
	}
	cum := make(map[string]int32, len(p.updated))
	for u, n := range p.updated {
		cum[u] = n
	}
	p.groups = append(p.groups, Group{Index: len(p.groups), Beta: beta, Pods: pods, Cumulative: cum})
}

// left is the number of pods not yet planned in units.
func (p *planner) left(units []string) int32 {
	var n int32
	for _, u := range units {
		n += p.remaining[u]
	}
	return n
}

// beta emits the beta group. In UnitByUnit order it is one pod of the first
// unit with replicas only: one pod per unit would run every unit at once.
func (p *planner) beta() {
	pods := map[string]int32{}
	for _, u := range p.units {
		if p.remaining[u] == 0 {
			continue
		}
		pods[u] = 1
		if p.unitByUnit {
			break
		}
	}
	p.emit(pods, true)
}

// batches releases every pod left in groups of size pods. In UnitByUnit
// order a batch stops at the end of its unit; the next batch is full size.
func (p *planner) batches(size int32) {
	for p.left(p.units) > 0 {
		if p.unitByUnit {
			u := p.nextUnit(p.units)
			p.emit(map[string]int32{u: min(size, p.remaining[u])}, false)
			continue
		}
		p.emit(p.distribute(min(size, p.left(p.units)), p.units), false)
	}
}

// custom releases the pods left with the custom groups, and fails when they
// leave some unplanned. A group is clipped to the pods left in its units and
// skipped when there are none. In UnitByUnit order a group that reaches the
// end of a unit goes on in the next one, as a new group: unlike a batch, a
// custom group is a count the user asked to be covered.
func (p *planner) custom(groups []customGroup, replicas int32) error {
	before := p.left(p.units)
	for _, cg := range groups {
		units := p.units
		if len(cg.units) > 0 {
			units = slices.DeleteFunc(slices.Clone(p.units), func(u string) bool { return !slices.Contains(cg.units, u) })
		}
		size := min(cg.size, p.left(units))
		if size == 0 {
			continue
		}
		if !p.unitByUnit {
			p.emit(p.distribute(size, units), false)
			continue
		}
		for size > 0 {
			u := p.nextUnit(units)
			n := min(size, p.remaining[u])
			p.emit(map[string]int32{u: n}, false)
			size -= n
		}
	}
	if after := p.left(p.units); after > 0 {
		detail := fmt.Sprintf("groups cover %d of %d replicas", before-after, before)
		if before < replicas {
			detail += fmt.Sprintf(" (spec.replicas %d less %d in the beta group)", replicas, replicas-before)
		}
		return &SpecError{Field: "spec.strategy.groups", Detail: detail}
	}
	return nil
}

// nextUnit is the unit of units that a UnitByUnit group takes pods from: the
// first one already started and not finished, so that a unit is finished
// before the next starts, else the first one with pods left. The caller
// makes sure that units have pods left.
func (p *planner) nextUnit(units []string) string {
	first := ""
	for _, u := range units {
		if p.remaining[u] == 0 {
			continue
		}
		if p.updated[u] > 0 {
			return u
		}
		if first == "" {
			first = u
		}
	}
	return first
}

// distribute spreads size pods (at most the pods left in units) over units
// in proportion to each unit's pods left: every unit gets the floor of its
// share, and the pods this leaves go one each to the units with the largest
// remainders, ties to the unit listed first. A unit never gets more than it
// has left: its share is below what it has left unless size takes every pod,
// and then no remainder is left.
func (p *planner) distribute(size int32, units []string) map[string]int32 {
	total := int64(p.left(units))
	type share struct {
		unit      string
		pods      int64
		remainder int64
	}
	shares := make([]share, 0, len(units))
	extra := int64(size)
	for _, u := range units {
		q := int64(size) * int64(p.remaining[u])
		shares = append(shares, share{unit: u, pods: q / total, remainder: q % total})
		extra -= q / total
	}
	// Stable, so equal remainders keep the order of units.
	slices.SortStableFunc(shares, func(a, b share) int { return cmp.Compare(b.remainder, a.remainder) })
	pods := map[string]int32{}
	for i, s := range shares {
		n := s.pods
		if int64(i) < extra {
			n++
		}
		if n > 0 {
			pods[s.unit] = int32(n)
		}
	}
	return pods
}

// Total is the number of pods of the plan, spec.replicas.
func (p Plan) Total() int32 {
	var n int32
	for _, u := range p.Units {
		n += p.UnitReplicas[u]
	}
	return n
}

// UpdatedTarget returns the number of pods of each unit that run the update
// revision once group groupIndex is done, with an entry for every unit. -1
// (or any negative index) is before the first group: zero everywhere. An
// index past the last group is the end of the release: every pod.
func (p Plan) UpdatedTarget(groupIndex int) map[string]int32 {
	target := make(map[string]int32, len(p.Units))
	for _, u := range p.Units {
		switch {
		case groupIndex < 0:
			target[u] = 0
		case len(p.Groups) == 0 || groupIndex >= len(p.Groups):
			target[u] = p.UnitReplicas[u]
		default:
			target[u] = p.Groups[groupIndex].Cumulative[u]
		}
	}
	return target
}

// FlowsPast reports whether a release may start on group k+1's pods while
// group k is still in progress, as a Deployment rolls: the boundary is no
// barrier of the plan's own. Two are: the end of the beta group (people
// and checks look at it before anything else moves) and, in UnitByUnit
// order, a boundary where the next group is in another unit (two units
// at once is what UnitByUnit forbids). The last group flows nowhere. The
// release adds the barriers of its own: a confirmation awaited, a pause.
func (p Plan) FlowsPast(k int) bool {
	if k < 0 || k+1 >= len(p.Groups) || p.Groups[k].Beta {
		return false
	}
	if !p.UnitByUnit {
		return true
	}
	for u := range p.Groups[k+1].Pods {
		if _, ok := p.Groups[k].Pods[u]; !ok {
			return false
		}
	}
	return true
}

// Size is the number of pods group k releases (0 past the groups).
func (p Plan) Size(k int) int32 {
	if k < 0 || k >= len(p.Groups) {
		return 0
	}
	var n int32
	for _, c := range p.Groups[k].Pods {
		n += c
	}
	return n
}

// Partition returns, for every unit, the number of its pods that stay on the
// old revision once group groupIndex is done: the unit's replicas less
// [Plan.UpdatedTarget]. It is the value of the unit's
// InPlaceSet spec.updateStrategy.partition.
func Partition(p Plan, groupIndex int) map[string]int32 {
	target := p.UpdatedTarget(groupIndex)
	partition := make(map[string]int32, len(p.Units))
	for _, u := range p.Units {
		partition[u] = p.UnitReplicas[u] - target[u]
	}
	return partition
}

// String renders the groups on one line, units in plan order, for logs and
// golden tests: "g0(beta) a=1 b=1 c=1 | g1 a=3 b=3 c=3", or "no groups".
func (p Plan) String() string {
	if len(p.Groups) == 0 {
		return "no groups"
	}
	parts := make([]string, 0, len(p.Groups))
	for _, g := range p.Groups {
		var b strings.Builder
		fmt.Fprintf(&b, "g%d", g.Index)
		if g.Beta {
			b.WriteString("(beta)")
		}
		for _, u := range p.Units {
			if n, ok := g.Pods[u]; ok {
				fmt.Fprintf(&b, " %s=%d", u, n)
			}
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " | ")
}

// SingleGroup is the plan of a fast release (`cafe deploy rollback --fast`):
// every pod in one group. The water level still bounds how many pods are
// operated on at once; only the pauses between groups go.
func (p Plan) SingleGroup() Plan {
	out := Plan{Units: p.Units, UnitReplicas: p.UnitReplicas, UnitByUnit: p.UnitByUnit}
	if p.Total() == 0 {
		return out
	}
	pods := map[string]int32{}
	cumulative := map[string]int32{}
	for _, u := range p.Units {
		cumulative[u] = p.UnitReplicas[u]
		if p.UnitReplicas[u] > 0 {
			pods[u] = p.UnitReplicas[u]
		}
	}
	out.Groups = []Group{{Index: 0, Pods: pods, Cumulative: cumulative}}
	return out
}
