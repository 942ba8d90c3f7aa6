package podset

import (
	"context"
	"errors"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete

// statefulSets drives podSetType StatefulSet: one native StatefulSet per
// unit (named <cafedeployment>-<unit>) with update strategy OnDelete, so
// the StatefulSet keeps ordinals and claims and CAFE chooses, through the
// lossless protocol, when each pod is deleted and recreated.
type statefulSets struct {
	nativeUnits
	sets map[string]*appsv1.StatefulSet
}

func loadStatefulSets(ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, updateRevision string) (Sets, error) {
	p := &statefulSets{sets: map[string]*appsv1.StatefulSet{}}
	units, err := loadNativeUnits(ctx, env, cd, updateRevision, &appsv1.StatefulSetList{}, "StatefulSets", func(unit string, sts *appsv1.StatefulSet) {
		p.sets[unit] = sts
	})
	if err != nil {
		return nil, err
	}
	p.nativeUnits = units
	return p, nil
}

func (p *statefulSets) Reports() map[string]UnitReport {
	out := map[string]UnitReport{}
	for unit, sts := range p.sets {
		v := nativeReport(p.pods[unit])
		v.Exists = true
		v.SpecReplicas = ptr.Deref(sts.Spec.Replicas, 0)
		v.Observed = sts.Spec.Template.Labels[cafev1alpha1.RevisionHashLabel] == p.rev && sts.Status.ObservedGeneration == sts.Generation
		out[unit] = v
	}
	return out
}

func (p *statefulSets) Apply(ctx context.Context, unit string, s UnitSettings) error {
	existing := p.sets[unit]
	in := onDeleteInput{
		Replicas: s.Replicas, Target: s.Replicas - s.Partition, MaxUnavailable: s.MaxUnavailable,
		Paused: p.cd.Spec.Strategy.Pause, Pods: p.pods[unit],
	}
	if existing != nil {
		in.Current = ptr.Deref(existing.Spec.Replicas, 0)
	}
	res := planOnDelete(in)
	errs := []error{p.env.ensureEvictionBudget(ctx, p.cd, unit), p.env.setGates(ctx, res.CloseGate, res.ReopenGate, p.rev), p.env.deleteDrained(ctx, res.Delete)}
	var current client.Object
	if existing != nil {
		current = existing
	}
	errs = append(errs, p.env.applyOwned(ctx, p.cd, p.desired(unit, res.Replicas), current))
	return errors.Join(errs...)
}

// desired is the unit's StatefulSet. Pods are managed in parallel: ordered
// start-up would let one drained pod hold back the recreation of others.
// The governing Service is the one named like the CafeDeployment (create a
// headless Service of that name for stable per-pod DNS names).
func (p *statefulSets) desired(unit string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.cd.Namespace,
			Name:      podSetName(p.cd, unit),
			Labels:    map[string]string{cafev1alpha1.DeploymentLabel: p.cd.Name, cafev1alpha1.UnitLabel: unit},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas:             ptr.To(replicas),
			Selector:             unitSelector(p.cd, unit),
			Template:             nativeTemplate(p.cd, unit, p.rev),
			VolumeClaimTemplates: p.cd.Spec.VolumeClaimTemplates,
			ServiceName:          p.cd.Name,
			PodManagementPolicy:  appsv1.ParallelPodManagement,
			UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			MinReadySeconds:      p.cd.Spec.Strategy.MinReadySeconds,
		},
	}
}
