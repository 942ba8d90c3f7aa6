package podset

import (
	"context"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

// +kubebuilder:rbac:groups=cafe.io,resources=classicsets,verbs=get;list;watch;create;update;patch;delete

// mixedSets runs a CafeDeployment whose spec.classic names some units: those
// units are ClassicSets, the others the pod sets of spec.podSetType. The
// release sees one report per unit either way, so groups, the water level
// and confirmations span pods and classic instances alike.
type mixedSets struct {
	pods    Sets
	classic *classicSets
}

func (m mixedSets) Reports() map[string]UnitReport {
	out := m.pods.Reports()
	for unit := range out {
		if m.classic.isClassic(unit) {
			delete(out, unit) // a pod set left in a classic unit is not the unit's
		}
	}
	maps.Copy(out, m.classic.Reports())
	return out
}

func (m mixedSets) Apply(ctx context.Context, unit string, s UnitSettings) error {
	if m.classic.isClassic(unit) {
		return m.classic.Apply(ctx, unit, s)
	}
	return m.pods.Apply(ctx, unit, s)
}

// classicSets drives the classic units: the ClassicSet controller runs the
// lossless protocol on the instances; the release sets each unit's
// replicas, partition and budget, as for InPlaceSets.
type classicSets struct {
	env  Env
	cd   *cafev1alpha1.CafeDeployment
	sets map[string]*cafev1alpha1.ClassicSet
}

func loadClassicSets(ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment) (*classicSets, error) {
	out := &classicSets{env: env, cd: cd, sets: map[string]*cafev1alpha1.ClassicSet{}}
	err := forEachControlled(ctx, env.Client, cd, &cafev1alpha1.ClassicSetList{}, "classic sets", func(unit string, s *cafev1alpha1.ClassicSet) {
		out.sets[unit] = s
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *classicSets) isClassic(unit string) bool {
	return p.cd.Spec.Classic != nil && slices.Contains(p.cd.Spec.Classic.Units, unit)
}

func (p *classicSets) Reports() map[string]UnitReport {
	out := map[string]UnitReport{}
	for unit, s := range p.sets {
		if !p.isClassic(unit) {
			continue
		}
		rev := revision.ObjectHash(classicTemplate(p.cd, unit))
		v := UnitReport{
			Exists:        true,
			SpecReplicas:  ptr.Deref(s.Spec.Replicas, 0),
			Replicas:      s.Status.Replicas,
			Ready:         s.Status.ReadyReplicas,
			Available:     s.Status.AvailableReplicas,
			Observed:      s.Status.ObservedGeneration == s.Generation && s.Status.UpdateRevision == rev,
			Share:         ptr.To(writtenShare(s.Spec.UpdateStrategy)),
			ShareObserved: s.Status.ObservedGeneration == s.Generation,
		}
		if c := meta.FindStatusCondition(s.Status.Conditions, cafev1alpha1.ClassicSetInstancesUpToDateCondition); c != nil && c.Reason == cafev1alpha1.InPlaceSetWaitingForTrafficReason {
			v.HeldDrain = c.Message
		}
		if s.Status.UpdateRevision == rev {
			v.Updated = s.Status.UpdatedReplicas
			v.UpdatedAvailable = s.Status.UpdatedAvailableReplicas
		}
		out[unit] = v
	}
	return out
}

func (p *classicSets) Apply(ctx context.Context, unit string, s UnitSettings) error {
	return applyUnitSet(ctx, p.env, p.cd, desiredClassicSet(p.cd, unit, s), p.sets[unit])
}

// desiredClassicSet builds the ClassicSet of one classic unit: instances
// of spec.classic.artifact labelled like the template's pods (so the app's
// Service lists them) and with the unit, placed on the hosts of the unit
// (a zone or a cell, by topology.unitType), with the replicas, partition
// and budget the release gives the unit.
func desiredClassicSet(cd *cafev1alpha1.CafeDeployment, unit string, s UnitSettings) *cafev1alpha1.ClassicSet {
	placement := cafev1alpha1.ClassicPlacement{Zone: unit}
	if cd.Spec.Topology.UnitType == cafev1alpha1.UnitTypeCell {
		placement = cafev1alpha1.ClassicPlacement{Cell: unit}
	}
	return &cafev1alpha1.ClassicSet{
		TypeMeta: metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicSet"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cd.Namespace,
			Name:      podSetName(cd, unit),
			Labels:    map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.UnitLabel: unit},
		},
		Spec: cafev1alpha1.ClassicSetSpec{
			Replicas:  ptr.To(s.Replicas),
			Selector:  unitSelector(cd, unit),
			Template:  classicTemplate(cd, unit),
			Placement: placement,
			UpdateStrategy: cafev1alpha1.InPlaceSetUpdateStrategy{
				Partition:       ptr.To(s.Partition),
				MaxUnavailable:  ptr.To(intstr.FromInt32(s.MaxUnavailable)),
				MinReadySeconds: cd.Spec.Strategy.MinReadySeconds,
				Paused:          cd.Spec.Strategy.Pause,
			},
		},
	}
}

// classicTemplate is the instance template of a classic unit.
func classicTemplate(cd *cafev1alpha1.CafeDeployment, unit string) cafev1alpha1.ClassicInstanceTemplate {
	return cafev1alpha1.ClassicInstanceTemplate{
		Metadata: cafev1alpha1.ClassicInstanceTemplateMeta{
			Labels:      withLabel(cd.Spec.Template.Labels, cafev1alpha1.UnitLabel, unit),
			Annotations: maps.Clone(cd.Spec.Template.Annotations),
		},
		Artifact: *cd.Spec.Classic.Artifact.DeepCopy(),
	}
}
