package cafedeployment

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment/podset"
	"github.com/cafe-io/cafe/internal/release/plan"
)

// defaultMaxUnavailable is a unit's maxUnavailable when the spec sets none.
var defaultMaxUnavailable = intstr.FromInt32(1)

// unitSettingsFor decides every unit's pod-set settings: the partition of
// the groups the release operates on (the current one, and the next where
// the release flows into it; all groups once it completed), its replicas,
// its share of the unavailability budget and its surge. A fast release
// (one group) is bounded by the water level alone.
func unitSettingsFor(cd *cafev1alpha1.CafeDeployment, p plan.Plan, reports map[string]podset.UnitReport, fast bool) (map[string]podset.UnitSettings, error) {
	current := ptr.Deref(cd.Status.Release.CurrentGroup, 0)
	through := int(operatedThrough(p, current, cd.Spec.Strategy.WaitsForConfirm()))
	if cd.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted {
		through = len(p.Groups)
	}
	partitions := plan.Partition(p, through)
	active := activeUnits(p, reports, p.UpdatedTarget(through))
	// Two groups at once still have at most a group's worth of pods in
	// flight.
	var inFlight int32
	if through > int(current) {
		inFlight = max(p.Size(int(current)), p.Size(through))
	}
	shares, err := budgetShares(cd, p, reports, active, budgetBounds{fast: fast, inFlight: inFlight})
	if err != nil {
		return nil, err
	}
	out := make(map[string]podset.UnitSettings, len(p.Units))
	for _, u := range p.Units {
		surge, err := cafev1alpha1.ResolveIntOrPercent(ptr.Deref(cd.Spec.Strategy.MaxSurgeSizeInGroup, intstr.FromInt32(0)), p.UnitReplicas[u], true)
		if err != nil {
			return nil, fmt.Errorf("spec.strategy.maxSurgeSizeInGroup: %w", err)
		}
		if !active[u] {
			surge = 0
		}
		out[u] = podset.UnitSettings{Replicas: p.UnitReplicas[u], Partition: partitions[u], MaxUnavailable: shares[u], MaxSurge: surge}
	}
	return out, nil
}

// activeUnits: a unit is active while it releases (fewer updated pods than
// the group's target), scales, or has a pod to drain for a requested
// deletion. Only active units get a budget share or a surge.
func activeUnits(p plan.Plan, reports map[string]podset.UnitReport, target map[string]int32) map[string]bool {
	active := map[string]bool{}
	for _, u := range p.Units {
		v := reports[u]
		active[u] = !v.Exists || v.Updated < target[u] || v.SpecReplicas != p.UnitReplicas[u] || v.DeleteRequested > 0
	}
	return active
}

// budgetBounds are what bounds the unavailability budget beyond the spec.
type budgetBounds struct {
	// fast: the water level is the only bound (a fast release or
	// rollback): no unit's maxUnavailable applies, and without
	// minAvailable every pod may be in flight.
	fast bool
	// inFlight, when positive, is the most pods the budget allows in
	// flight at once (a release flowing through two groups).
	inFlight int32
}

// budgetShares gives each active unit its share of the unavailability
// budget. Without minAvailable the budget is the sum of the units'
// maxUnavailable (at least 1 each); with it, the pods that may be
// unavailable above the water level, less those already unavailable in
// inactive units (they are not draining on the release's account, but they
// count against the level all the same).
func budgetShares(cd *cafev1alpha1.CafeDeployment, p plan.Plan, reports map[string]podset.UnitReport, active map[string]bool, bounds budgetBounds) (map[string]int32, error) {
	perUnit := map[string]int32{}
	var budget, inactiveUnavailable int32
	for _, u := range p.Units {
		m, err := cafev1alpha1.ResolveIntOrPercent(ptr.Deref(cd.Spec.Strategy.MaxUnavailable, defaultMaxUnavailable), p.UnitReplicas[u], false)
		if err != nil {
			return nil, fmt.Errorf("spec.strategy.maxUnavailable: %w", err)
		}
		if bounds.fast {
			m = p.UnitReplicas[u]
		}
		perUnit[u] = max(m, 1)
		budget += perUnit[u]
		if v := reports[u]; !active[u] {
			inactiveUnavailable += max(v.Replicas-v.Available, 0)
		}
	}
	if cd.Spec.Strategy.MinAvailable != nil {
		minAvailable, err := cafev1alpha1.ResolveIntOrPercent(*cd.Spec.Strategy.MinAvailable, p.Total(), true)
		if err != nil {
			return nil, fmt.Errorf("spec.strategy.minAvailable: %w", err)
		}
		budget = p.Total() - minAvailable - inactiveUnavailable
	}
	if bounds.inFlight > 0 {
		budget = min(budget, bounds.inFlight)
	}
	return splitBudget(p.Units, active, perUnit, budget), nil
}

// splitBudget shares the water level among the units an operation runs in:
// the whole CafeDeployment may have at most replicas − minAvailable pods
// unavailable, less those already unavailable in units not being operated
// on. Each active unit gets, in unit order, up to its own maxUnavailable;
// an inactive unit gets 0, so it starts no drain. The sum of the shares
// never exceeds the budget, so no interleaving of the pod sets can take
// ready pods below minAvailable.
func splitBudget(units []string, active map[string]bool, perUnit map[string]int32, budget int32) map[string]int32 {
	out := make(map[string]int32, len(units))
	for _, u := range units {
		if !active[u] {
			continue
		}
		share := min(perUnit[u], max(budget, 0))
		out[u] = share
		budget -= share
	}
	return out
}

// applyUnits moves every unit's pod set to its settings, in unit order. A
// failing unit does not hold back the others.
func applyUnits(ctx context.Context, sets podset.Sets, units []string, settings map[string]podset.UnitSettings) error {
	var errs []error
	for _, u := range units {
		if err := sets.Apply(ctx, u, settings[u]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
