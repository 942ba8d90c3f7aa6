package cafedeployment

import (
	"context"
	"errors"
	"fmt"
	"math"

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
	held := func(k int32) bool { return cd.Spec.Strategy.WaitsForConfirm() || trafficStep(cd, k) != nil }
	through := int(operatedThrough(p, current, held))
	if cd.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted {
		through = len(p.Groups)
	}
	partitions := plan.Partition(p, through)
	active := activeUnits(p, reports, p.UpdatedTarget(through))
	// Several groups at once still have at most a group's worth of pods
	// in flight.
	var inFlight int32
	if through > int(current) {
		for k := int(current); k <= through; k++ {
			inFlight = max(inFlight, p.Size(k))
		}
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
// budget: each unit's maxUnavailable (at least 1) at most, and with
// minAvailable the pods that may be unavailable above the water level,
// less every pod unavailable now (in units not operated on, they are not
// draining on the release's account but count against the level all the
// same; in units operated on, their drains are in flight). While a release
// flows through two groups, at most bounds.inFlight pods of the units
// operated on are unavailable. Shares then pass through handOff.
func budgetShares(cd *cafev1alpha1.CafeDeployment, p plan.Plan, reports map[string]podset.UnitReport, active map[string]bool, bounds budgetBounds) (map[string]int32, error) {
	perUnit, unavailable := map[string]int32{}, map[string]int32{}
	var allUnavailable, activeUnavailable int32
	for _, u := range p.Units {
		m, err := cafev1alpha1.ResolveIntOrPercent(ptr.Deref(cd.Spec.Strategy.MaxUnavailable, defaultMaxUnavailable), p.UnitReplicas[u], false)
		if err != nil {
			return nil, fmt.Errorf("spec.strategy.maxUnavailable: %w", err)
		}
		if bounds.fast {
			m = p.UnitReplicas[u]
		}
		perUnit[u] = max(m, 1)
		v := reports[u]
		// A pod the unit should run but has not (a native pod deleted and
		// not yet recreated) is unavailable too.
		unavailable[u] = max(max(v.Replicas, p.UnitReplicas[u])-v.Available, 0)
		allUnavailable += unavailable[u]
		if active[u] {
			activeUnavailable += unavailable[u]
		}
	}
	free := int32(math.MaxInt32)
	if cd.Spec.Strategy.MinAvailable != nil {
		minAvailable, err := cafev1alpha1.ResolveIntOrPercent(*cd.Spec.Strategy.MinAvailable, p.Total(), true)
		if err != nil {
			return nil, fmt.Errorf("spec.strategy.minAvailable: %w", err)
		}
		free = p.Total() - minAvailable - allUnavailable
	}
	if bounds.inFlight > 0 {
		free = min(free, bounds.inFlight-activeUnavailable)
	}
	return handOff(splitBudget(p.Units, active, perUnit, unavailable, free), reports), nil
}

// splitBudget shares the water level among the units an operation runs in.
// Each active unit keeps what it has unavailable now (up to its own
// maxUnavailable) and gets, in unit order, what is free of the budget on
// top, up to its maxUnavailable; an inactive unit gets 0, so it starts no
// drain. The shares never let more pods be unavailable than free allows
// beyond the ones unavailable now, so no interleaving of the pod sets can
// take ready pods below minAvailable.
func splitBudget(units []string, active map[string]bool, perUnit, unavailable map[string]int32, free int32) map[string]int32 {
	out := make(map[string]int32, len(units))
	for _, u := range units {
		if !active[u] {
			continue
		}
		held := min(unavailable[u], perUnit[u])
		extra := min(perUnit[u]-held, max(free, 0))
		out[u] = held + extra
		free -= extra
	}
	return out
}

// handOff keeps the shares from growing in a reconcile in which a pod set
// runs under a share it has not acted on yet, or whose share shrinks now:
// a pod set drains on its own, so until it has seen its smaller share it
// may still start drains under the larger one, and the budget it gives up
// may go to another unit only after that (the next reconcile). Shrinking
// is always safe and happens at once.
func handOff(want map[string]int32, reports map[string]podset.UnitReport) map[string]int32 {
	settled := true
	for u, v := range reports {
		if v.Share != nil && (!v.ShareObserved || want[u] < *v.Share) {
			settled = false
		}
	}
	if settled {
		return want
	}
	for u, share := range want {
		if v := reports[u]; v.Share != nil && share > *v.Share {
			want[u] = *v.Share
		}
	}
	return want
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
