package cafedeployment

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// podSetName is the name of a unit's pod set (for a ReplicaSet, the prefix
// of its revisions' names).
func podSetName(cd *cafev1alpha1.CafeDeployment, unit string) string {
	return cd.Name + "-" + unit
}

// unitSettings is what the release decides for one unit's pod set.
type unitSettings struct {
	Replicas  int32
	Partition int32
	// MaxUnavailable is the unit's share of the unavailability budget.
	MaxUnavailable int32
	// MaxSurge is how many pods above Replicas the replace modes may run.
	MaxSurge int32
}

// unitView is what the release reads of one unit's pod set, whatever its
// kind.
type unitView struct {
	// Exists is false until the unit's pod set was created.
	Exists bool
	// SpecReplicas is the replicas the pod set was last told to run.
	SpecReplicas int32
	// Replicas, Ready and Available count the unit's pods (available: ready,
	// gate open, minReadySeconds passed).
	Replicas, Ready, Available int32
	// Updated and UpdatedAvailable count pods on the update revision.
	Updated, UpdatedAvailable int32
	// Observed is false while the pod set has not yet seen its latest spec,
	// so its counts cannot be trusted.
	Observed bool
	// DeleteRequested counts pods of a native pod set whose deletion was
	// requested: the unit needs a share of the budget to drain them.
	DeleteRequested int32
}

// podSets is one reconcile's view of a CafeDeployment's pod sets, and the
// way to move each unit's towards its settings. There is one implementation
// per spec.podSetType.
type podSets interface {
	// views returns what each unit's pod set reports, by unit.
	views() map[string]unitView
	// apply makes the unit's pod set follow the settings (create or update
	// it, and for the native kinds run the next steps of the lossless
	// protocol on its pods).
	apply(ctx context.Context, unit string, s unitSettings) error
}

// loadPodSets reads the CafeDeployment's pod sets of its podSetType.
func (r *Reconciler) loadPodSets(ctx context.Context, cd *cafev1alpha1.CafeDeployment, updateRevision string) (podSets, error) {
	switch cd.Spec.PodSetType {
	case cafev1alpha1.PodSetTypeReplicaSet:
		return r.loadReplicaSets(ctx, cd, updateRevision)
	case cafev1alpha1.PodSetTypeStatefulSet:
		return r.loadStatefulSets(ctx, cd, updateRevision)
	default:
		return r.loadInPlaceSets(ctx, cd, updateRevision)
	}
}

// inPlaceSets drives podSetType InPlaceSet: the InPlaceSet controller runs
// the protocol; the release only sets each unit's partition and budget.
type inPlaceSets struct {
	r    *Reconciler
	cd   *cafev1alpha1.CafeDeployment
	sets map[string]*cafev1alpha1.InPlaceSet
	rev  string
}

func (r *Reconciler) loadInPlaceSets(ctx context.Context, cd *cafev1alpha1.CafeDeployment, updateRevision string) (*inPlaceSets, error) {
	list := &cafev1alpha1.InPlaceSetList{}
	if err := r.Client.List(ctx, list, client.InNamespace(cd.Namespace), client.MatchingLabels{cafev1alpha1.DeploymentLabel: cd.Name}); err != nil {
		return nil, fmt.Errorf("listing pod sets: %w", err)
	}
	out := &inPlaceSets{r: r, cd: cd, sets: map[string]*cafev1alpha1.InPlaceSet{}, rev: updateRevision}
	for i := range list.Items {
		s := &list.Items[i]
		if metav1.IsControlledBy(s, cd) {
			out.sets[s.Labels[cafev1alpha1.UnitLabel]] = s
		}
	}
	return out, nil
}

func (p *inPlaceSets) views() map[string]unitView {
	out := map[string]unitView{}
	for unit, s := range p.sets {
		v := unitView{
			Exists:       true,
			SpecReplicas: ptr.Deref(s.Spec.Replicas, 0),
			Replicas:     ptr.Deref(s.Status.Replicas, 0),
			Ready:        ptr.Deref(s.Status.ReadyReplicas, 0),
			Available:    ptr.Deref(s.Status.AvailableReplicas, 0),
			Observed:     s.Status.ObservedGeneration == s.Generation && s.Status.UpdateRevision == p.rev,
		}
		if s.Status.UpdateRevision == p.rev {
			v.Updated = ptr.Deref(s.Status.UpdatedReplicas, 0)
			v.UpdatedAvailable = ptr.Deref(s.Status.UpdatedReadyReplicas, 0)
		}
		out[unit] = v
	}
	return out
}

func (p *inPlaceSets) apply(ctx context.Context, unit string, s unitSettings) error {
	var existing client.Object
	if set := p.sets[unit]; set != nil {
		existing = set
	}
	return p.r.applyOwned(ctx, p.cd, desiredInPlaceSet(p.cd, unit, s), existing)
}

// unitSelector is the CafeDeployment's selector narrowed to one unit.
func unitSelector(cd *cafev1alpha1.CafeDeployment, unit string) *metav1.LabelSelector {
	selector := cd.Spec.Selector.DeepCopy()
	selector.MatchLabels = maps.Clone(selector.MatchLabels)
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[cafev1alpha1.UnitLabel] = unit
	return selector
}

// desiredInPlaceSet builds the InPlaceSet of one unit: the CafeDeployment's
// template unchanged (so a revision has the same hash in every unit; the
// InPlaceSet labels its pods with the unit and pins them to it) and its
// selector narrowed to the unit, with the replicas, partition and share of
// the unavailability budget the release gives it.
func desiredInPlaceSet(cd *cafev1alpha1.CafeDeployment, unit string, s unitSettings) *cafev1alpha1.InPlaceSet {
	template := cd.Spec.Template.DeepCopy()
	return &cafev1alpha1.InPlaceSet{
		TypeMeta: metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "InPlaceSet"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cd.Namespace,
			Name:      podSetName(cd, unit),
			Labels:    map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.UnitLabel: unit},
		},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas: ptr.To(s.Replicas),
			Selector: unitSelector(cd, unit),
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
