package podset

import (
	"context"
	"k8s.io/apimachinery/pkg/api/meta"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// +kubebuilder:rbac:groups=cafe.io,resources=inplacesets,verbs=get;list;watch;create;update;patch;delete

// inPlaceSets drives podSetType InPlaceSet: the InPlaceSet controller runs
// the protocol; the release only sets each unit's partition and budget.
type inPlaceSets struct {
	env  Env
	cd   *cafev1alpha1.CafeDeployment
	sets map[string]*cafev1alpha1.InPlaceSet
	rev  string
}

func loadInPlaceSets(ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, updateRevision string) (Sets, error) {
	out := &inPlaceSets{env: env, cd: cd, sets: map[string]*cafev1alpha1.InPlaceSet{}, rev: updateRevision}
	err := forEachControlled(ctx, env.Client, cd, &cafev1alpha1.InPlaceSetList{}, "pod sets", func(unit string, s *cafev1alpha1.InPlaceSet) {
		out.sets[unit] = s
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *inPlaceSets) Reports() map[string]UnitReport {
	out := map[string]UnitReport{}
	for unit, s := range p.sets {
		v := UnitReport{
			Exists:       true,
			SpecReplicas: ptr.Deref(s.Spec.Replicas, 0),
			Replicas:     ptr.Deref(s.Status.Replicas, 0),
			Ready:        ptr.Deref(s.Status.ReadyReplicas, 0),
			Available:    ptr.Deref(s.Status.AvailableReplicas, 0),
			Observed:     s.Status.ObservedGeneration == s.Generation && s.Status.UpdateRevision == p.rev,
			Share:        ptr.To(writtenShare(s.Spec.UpdateStrategy)),
			// The share is in the spec: any reconcile of it saw the share.
			ShareObserved: s.Status.ObservedGeneration == s.Generation,
		}
		if c := meta.FindStatusCondition(s.Status.Conditions, cafev1alpha1.InPlaceSetPodsUpToDateCondition); c != nil && c.Reason == cafev1alpha1.InPlaceSetWaitingForTrafficReason {
			v.HeldDrain = c.Message
		}
		if s.Status.UpdateRevision == p.rev {
			v.Updated = ptr.Deref(s.Status.UpdatedReplicas, 0)
			v.UpdatedAvailable = ptr.Deref(s.Status.UpdatedReadyReplicas, 0)
		}
		out[unit] = v
	}
	return out
}

// writtenShare is the share of the unavailability budget the controller
// wrote into a pod set's update strategy (an InPlaceSet's or a
// ClassicSet's; desiredInPlaceSet and desiredClassicSet write an integer).
func writtenShare(strategy cafev1alpha1.InPlaceSetUpdateStrategy) int32 {
	share := ptr.Deref(strategy.MaxUnavailable, intstr.FromInt32(0))
	return int32(share.IntValue())
}

func (p *inPlaceSets) Apply(ctx context.Context, unit string, s UnitSettings) error {
	return applyUnitSet(ctx, p.env, p.cd, desiredInPlaceSet(p.cd, unit, s), p.sets[unit])
}

// applyUnitSet applies a unit's set CAFE runs itself (an InPlaceSet, a
// ClassicSet) over the one read, nil when the unit has none yet.
func applyUnitSet[T interface {
	client.Object
	comparable
}](ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, desired client.Object, read T) error {
	var existing client.Object
	var none T
	if read != none {
		existing = read // a nil T would be a non-nil interface
	}
	return env.applyOwned(ctx, cd, desired, existing)
}

// desiredInPlaceSet builds the InPlaceSet of one unit: the CafeDeployment's
// template unchanged (so a revision has the same hash in every unit; the
// InPlaceSet labels its pods with the unit and pins them to it) and its
// selector narrowed to the unit, with the replicas, partition and share of
// the unavailability budget the release gives it.
func desiredInPlaceSet(cd *cafev1alpha1.CafeDeployment, unit string, s UnitSettings) *cafev1alpha1.InPlaceSet {
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
			Endpoints: cd.Spec.Endpoints.DeepCopy(),
		},
	}
}
