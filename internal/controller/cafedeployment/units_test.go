package cafedeployment

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment/podset"
)

// serving is a unit of twelveOverThreeZones whose 4 pods all serve, updated
// of them on the update revision.
func serving(updated int32) podset.UnitReport {
	return podset.UnitReport{Exists: true, SpecReplicas: 4, Replicas: 4, Ready: 4, Available: 4, Updated: updated, UpdatedAvailable: updated, Observed: true}
}

func reportsOf(a, b, c podset.UnitReport) map[string]podset.UnitReport {
	return map[string]podset.UnitReport{"a": a, "b": b, "c": c}
}

func settingsOf(a, b, c podset.UnitSettings) map[string]podset.UnitSettings {
	return map[string]podset.UnitSettings{"a": a, "b": b, "c": c}
}

func atGroup(k int32) cafev1alpha1.ReleaseStatus {
	return cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseProgressing, CurrentGroup: ptr.To(k)}
}

// settings is what a unit of 4 pods gets with partition, budget share and
// surge.
func settings(partition, maxUnavailable, maxSurge int32) podset.UnitSettings {
	return podset.UnitSettings{Replicas: 4, Partition: partition, MaxUnavailable: maxUnavailable, MaxSurge: maxSurge}
}

func intOrString(s string) *intstr.IntOrString { v := intstr.Parse(s); return &v }

func TestUnitSettingsFor(t *testing.T) {
	p := twelveOverThreeZones(t)
	unavailable := func(v podset.UnitReport, n int32) podset.UnitReport { v.Available -= n; return v }
	oneUpdatedEach := reportsOf(serving(1), serving(1), serving(1))
	tests := []struct {
		name     string
		strategy cafev1alpha1.CafeDeploymentStrategy
		// flows: no confirmation is awaited, so the release runs into the
		// next group (the other cases look at one group alone).
		flows   bool
		release cafev1alpha1.ReleaseStatus
		reports map[string]podset.UnitReport
		want    map[string]podset.UnitSettings
	}{
		{
			name:    "without a gate the release operates on every group up to the next barrier",
			flows:   true,
			release: atGroup(1),
			reports: oneUpdatedEach,
			want:    settingsOf(settings(0, 1, 0), settings(0, 1, 0), settings(0, 1, 0)),
		},
		{
			name:     "groups at once keep at most a group's worth of pods in flight",
			flows:    true,
			strategy: cafev1alpha1.CafeDeploymentStrategy{MaxUnavailable: intOrString("2")},
			release:  atGroup(1),
			reports:  oneUpdatedEach,
			want:     settingsOf(settings(0, 2, 0), settings(0, 1, 0), settings(0, 0, 0)),
		},
		{
			name:    "the end of the beta group is a barrier",
			flows:   true,
			release: atGroup(0),
			reports: reportsOf(serving(0), serving(0), serving(0)),
			want:    settingsOf(settings(3, 1, 0), settings(3, 1, 0), settings(3, 1, 0)),
		},
		{
			name:    "every releasing unit gets the current group's partition and its own maxUnavailable",
			release: atGroup(1),
			reports: oneUpdatedEach,
			want:    settingsOf(settings(2, 1, 0), settings(2, 1, 0), settings(2, 1, 0)),
		},
		{
			name:     "a unit that reached the group's target is inactive: no budget share and no surge",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MaxSurgeSizeInGroup: intOrString("1")},
			release:  atGroup(1),
			reports:  reportsOf(serving(2), serving(1), serving(1)),
			want:     settingsOf(settings(2, 0, 0), settings(2, 1, 1), settings(2, 1, 1)),
		},
		{
			name:    "a unit whose pod set does not exist yet is active",
			release: atGroup(0),
			reports: reportsOf(podset.UnitReport{}, serving(1), serving(1)),
			want:    settingsOf(settings(3, 1, 0), settings(3, 0, 0), settings(3, 0, 0)),
		},
		{
			name:    "a unit that scales is active",
			release: atGroup(0),
			reports: reportsOf(serving(1), func() podset.UnitReport { v := serving(1); v.SpecReplicas = 3; return v }(), serving(1)),
			want:    settingsOf(settings(3, 0, 0), settings(3, 1, 0), settings(3, 0, 0)),
		},
		{
			name:    "a unit with a pod whose deletion was requested is active, to drain it",
			release: atGroup(0),
			reports: reportsOf(serving(1), serving(1), func() podset.UnitReport { v := serving(1); v.DeleteRequested = 1; return v }()),
			want:    settingsOf(settings(3, 0, 0), settings(3, 0, 0), settings(3, 1, 0)),
		},
		{
			name:     "minAvailable shares the water level among the active units in unit order",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MaxUnavailable: intOrString("2"), MinAvailable: intOrString("9")},
			release:  atGroup(1),
			reports:  oneUpdatedEach,
			want:     settingsOf(settings(2, 2, 0), settings(2, 1, 0), settings(2, 0, 0)),
		},
		{
			name:     "pods unavailable in an inactive unit count against the water level",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MaxUnavailable: intOrString("2"), MinAvailable: intOrString("9")},
			release:  atGroup(1),
			reports:  reportsOf(unavailable(serving(2), 2), serving(1), serving(1)),
			want:     settingsOf(settings(2, 0, 0), settings(2, 1, 0), settings(2, 0, 0)),
		},
		{
			// A StatefulSet's or ReplicaSet's pod between its deletion and its
			// recreation is in no count of the unit: it is unavailable all
			// the same.
			name:     "a pod missing from its unit counts against the water level",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MinAvailable: intOrString("11")},
			release:  atGroup(1),
			reports:  reportsOf(serving(1), serving(1), func() podset.UnitReport { v := serving(1); v.Replicas, v.Ready, v.Available = 3, 3, 3; return v }()),
			want:     settingsOf(settings(2, 0, 0), settings(2, 0, 0), settings(2, 1, 0)),
		},
		{
			name:     "a water level already crossed gives no unit a share",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MinAvailable: intOrString("100%")},
			release:  atGroup(1),
			reports:  oneUpdatedEach,
			want:     settingsOf(settings(2, 0, 0), settings(2, 0, 0), settings(2, 0, 0)),
		},
		{
			name:     "maxUnavailable as a percentage rounds down, but to no less than one pod",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MaxUnavailable: intOrString("10%")},
			release:  atGroup(1),
			reports:  oneUpdatedEach,
			want:     settingsOf(settings(2, 1, 0), settings(2, 1, 0), settings(2, 1, 0)),
		},
		{
			name:     "maxSurgeSizeInGroup as a percentage of the unit rounds up",
			strategy: cafev1alpha1.CafeDeploymentStrategy{MaxSurgeSizeInGroup: intOrString("30%")},
			release:  atGroup(1),
			reports:  oneUpdatedEach,
			want:     settingsOf(settings(2, 1, 2), settings(2, 1, 2), settings(2, 1, 2)),
		},
		{
			name:    "a completed release updates every pod, whatever its recorded group",
			release: cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseCompleted, CurrentGroup: ptr.To[int32](2)},
			reports: reportsOf(serving(4), serving(3), serving(4)),
			want:    settingsOf(settings(0, 0, 0), settings(0, 1, 0), settings(0, 0, 0)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			strategy := tt.strategy
			strategy.NeedWaitingForConfirm = ptr.To(!tt.flows)
			cd := &cafev1alpha1.CafeDeployment{Spec: cafev1alpha1.CafeDeploymentSpec{Strategy: strategy}, Status: cafev1alpha1.CafeDeploymentStatus{Release: tt.release}}
			got, err := unitSettingsFor(cd, p, tt.reports, false)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// A fast release (or rollback) is one group bounded by the water level
// alone: no unit's maxUnavailable holds it back.
func TestUnitSettingsForFastRelease(t *testing.T) {
	p := twelveOverThreeZones(t).SingleGroup()
	tests := []struct {
		name     string
		strategy cafev1alpha1.CafeDeploymentStrategy
		want     map[string]podset.UnitSettings
	}{
		{"minAvailable is the only bound", cafev1alpha1.CafeDeploymentStrategy{MinAvailable: intOrString("50%")},
			settingsOf(settings(0, 4, 0), settings(0, 2, 0), settings(0, 0, 0))},
		{"without minAvailable every pod may be in flight", cafev1alpha1.CafeDeploymentStrategy{},
			settingsOf(settings(0, 4, 0), settings(0, 4, 0), settings(0, 4, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cd := &cafev1alpha1.CafeDeployment{Spec: cafev1alpha1.CafeDeploymentSpec{Strategy: tt.strategy}, Status: cafev1alpha1.CafeDeploymentStatus{Release: atGroup(0)}}
			got, err := unitSettingsFor(cd, p, reportsOf(serving(0), serving(0), serving(0)), true)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestUnitSettingsForNamesTheFieldItCannotResolve(t *testing.T) {
	p := twelveOverThreeZones(t)
	tests := []struct {
		strategy cafev1alpha1.CafeDeploymentStrategy
		field    string
	}{
		{cafev1alpha1.CafeDeploymentStrategy{MaxUnavailable: intOrString("a lot")}, "spec.strategy.maxUnavailable"},
		{cafev1alpha1.CafeDeploymentStrategy{MinAvailable: intOrString("150%")}, "spec.strategy.minAvailable"},
		{cafev1alpha1.CafeDeploymentStrategy{MaxSurgeSizeInGroup: intOrString("-1")}, "spec.strategy.maxSurgeSizeInGroup"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			g := NewWithT(t)
			cd := &cafev1alpha1.CafeDeployment{Spec: cafev1alpha1.CafeDeploymentSpec{Strategy: tt.strategy}, Status: cafev1alpha1.CafeDeploymentStatus{Release: atGroup(0)}}
			_, err := unitSettingsFor(cd, p, reportsOf(serving(0), serving(0), serving(0)), false)
			g.Expect(err).To(MatchError(ContainSubstring(tt.field)))
		})
	}
}

func TestSplitBudgetNeverExceedsTheWaterLevel(t *testing.T) {
	units := []string{"a", "b", "c"}
	per := map[string]int32{"a": 2, "b": 2, "c": 2}
	none := map[string]int32{}
	tests := []struct {
		name        string
		active      map[string]bool
		unavailable map[string]int32
		free        int32
		want        map[string]int32
	}{
		{"every active unit gets its own maxUnavailable when the budget allows", map[string]bool{"a": true, "b": true, "c": true}, none, 6, map[string]int32{"a": 2, "b": 2, "c": 2}},
		{"a tight budget goes to the first units in order", map[string]bool{"a": true, "b": true, "c": true}, none, 3, map[string]int32{"a": 2, "b": 1, "c": 0}},
		{"inactive units get nothing", map[string]bool{"b": true}, none, 6, map[string]int32{"b": 2}},
		{"a negative budget gives nothing", map[string]bool{"a": true}, none, -1, map[string]int32{"a": 0}},
		// c has a drain in flight that a's and b's shares must not come on
		// top of: c keeps a share covering it, a gets what is free.
		{"a unit keeps the share its drains in flight hold", map[string]bool{"a": true, "b": true, "c": true}, map[string]int32{"c": 1}, 1, map[string]int32{"a": 1, "b": 0, "c": 1}},
		{"what is unavailable beyond a unit's maxUnavailable gives it no more", map[string]bool{"a": true}, map[string]int32{"a": 3}, 4, map[string]int32{"a": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := splitBudget(units, tt.active, per, tt.unavailable, tt.free)
			g.Expect(got).To(Equal(tt.want))
			var beyond int32
			for u, v := range got {
				beyond += max(v-tt.unavailable[u], 0)
			}
			g.Expect(beyond).To(BeNumerically("<=", max(tt.free, 0)), "shares beyond what is unavailable now")
		})
	}
}

// A pod set drains on its own: a share given up is handed to another unit
// only once the pod set that gave it up has seen its smaller share (the
// water-level violation e2e caught when a flowing release moved budget
// from one zone to another in one step).
func TestHandOffRaisesSharesOnlyOnceEveryPodSetSawItsShare(t *testing.T) {
	g := NewWithT(t)
	share := func(n int32, seen bool) podset.UnitReport {
		return podset.UnitReport{Exists: true, Share: ptr.To(n), ShareObserved: seen}
	}
	settled := map[string]podset.UnitReport{"a": share(0, true), "b": share(1, true), "c": share(1, true)}
	g.Expect(handOff(map[string]int32{"a": 1, "b": 1, "c": 1}, settled)).To(Equal(map[string]int32{"a": 1, "b": 1, "c": 1}), "settled: raised at once")
	g.Expect(handOff(map[string]int32{"a": 1, "b": 1, "c": 0}, settled)).To(Equal(map[string]int32{"a": 0, "b": 1, "c": 0}), "c shrinks now, a grows next time")
	unseen := map[string]podset.UnitReport{"a": share(0, true), "b": share(1, true), "c": share(0, false)}
	g.Expect(handOff(map[string]int32{"a": 1, "b": 1, "c": 0}, unseen)).To(Equal(map[string]int32{"a": 0, "b": 1, "c": 0}), "c has not seen its smaller share yet")
	native := map[string]podset.UnitReport{"a": {Exists: true}, "b": {Exists: true}}
	g.Expect(handOff(map[string]int32{"a": 2, "b": 0}, native)).To(Equal(map[string]int32{"a": 2, "b": 0}), "native pod sets: the controller drains under the share it decides")
}
