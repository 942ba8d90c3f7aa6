package cafedeployment

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// podSetName is the name of a unit's pod set.
func podSetName(cd *cafev1alpha1.CafeDeployment, unit string) string {
	return cd.Name + "-" + unit
}

// unitSettings is what the release decides for one unit's pod set.
type unitSettings struct {
	Replicas       int32
	Partition      int32
	MaxUnavailable int32
}

// desiredInPlaceSet builds the InPlaceSet of one unit: the CafeDeployment's
// template unchanged (so a revision has the same hash in every unit; the
// InPlaceSet labels its pods with the unit and pins them to it) and its
// selector narrowed to the unit, with the replicas, partition and share of
// the unavailability budget the release gives it.
func desiredInPlaceSet(cd *cafev1alpha1.CafeDeployment, unit string, s unitSettings) *cafev1alpha1.InPlaceSet {
	template := cd.Spec.Template.DeepCopy()
	selector := cd.Spec.Selector.DeepCopy()
	selector.MatchLabels = maps.Clone(selector.MatchLabels)
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[cafev1alpha1.UnitLabel] = unit
	return &cafev1alpha1.InPlaceSet{
		TypeMeta: metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "InPlaceSet"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cd.Namespace,
			Name:      podSetName(cd, unit),
			Labels:    map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.UnitLabel: unit},
		},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas: ptr.To(s.Replicas),
			Selector: selector,
			Template: corev1.PodTemplateSpec{ObjectMeta: template.ObjectMeta, Spec: template.Spec},
			Unit:     &cafev1alpha1.PodSetUnit{Key: cd.Spec.Topology.UnitLabelKey(), Value: unit},
			UpdateStrategy: cafev1alpha1.InPlaceSetUpdateStrategy{
				Partition:       ptr.To(s.Partition),
				MaxUnavailable:  ptr.To(intstr.FromInt32(s.MaxUnavailable)),
				MinReadySeconds: cd.Spec.Strategy.MinReadySeconds,
				Paused:          cd.Spec.Strategy.Pause,
			},
		},
	}
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
