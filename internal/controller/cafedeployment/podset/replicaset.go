package podset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/conflict"
	"github.com/cafe-io/cafe/internal/writebatch"
)

// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch;create;update;patch;delete

// replicaSets drives podSetType ReplicaSet: per unit, one native ReplicaSet
// per revision (named <cafedeployment>-<unit>-<revision>), scaled by CAFE
// and never by a Deployment; the lossless protocol runs here.
type replicaSets struct {
	nativeUnits
	sets map[string][]*appsv1.ReplicaSet
}

func loadReplicaSets(ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, updateRevision string) (Sets, error) {
	p := &replicaSets{sets: map[string][]*appsv1.ReplicaSet{}}
	units, err := loadNativeUnits(ctx, env, cd, updateRevision, &appsv1.ReplicaSetList{}, "ReplicaSets", func(unit string, rs *appsv1.ReplicaSet) {
		p.sets[unit] = append(p.sets[unit], rs)
	})
	if err != nil {
		return nil, err
	}
	p.nativeUnits = units
	return p, nil
}

func replicaSetName(cd *cafev1alpha1.CafeDeployment, unit, revision string) string {
	return podSetName(cd, unit) + "-" + revision
}

func (p *replicaSets) Reports() map[string]UnitReport {
	out := map[string]UnitReport{}
	for unit, sets := range p.sets {
		v := nativeReport(p.pods[unit])
		for _, rs := range sets {
			v.SpecReplicas += ptr.Deref(rs.Spec.Replicas, 0)
			if rs.Name == replicaSetName(p.cd, unit, p.rev) {
				v.Exists, v.Observed = true, true
			}
		}
		out[unit] = v
	}
	return out
}

func (p *replicaSets) Apply(ctx context.Context, unit string, s UnitSettings) error {
	newName := replicaSetName(p.cd, unit, p.rev)
	in := replaceInput{
		Replicas: s.Replicas, Target: s.Replicas - s.Partition, MaxUnavailable: s.MaxUnavailable, MaxSurge: s.MaxSurge,
		Paused: p.cd.Spec.Strategy.Pause, NewSet: newName, OldSets: map[string]int32{}, Pods: p.pods[unit],
	}
	var newSet *appsv1.ReplicaSet
	for _, rs := range p.sets[unit] {
		if rs.Name == newName {
			newSet, in.NewCurrent = rs, ptr.Deref(rs.Spec.Replicas, 0)
		} else {
			in.OldSets[rs.Name] = ptr.Deref(rs.Spec.Replicas, 0)
		}
	}
	res := planReplace(in)
	if err := p.env.ensureEvictionBudget(ctx, p.cd, unit); err != nil {
		return err
	}
	if err := p.env.setGates(ctx, res.CloseGate, res.ReopenGate, p.rev); err != nil {
		return err
	}
	if err := p.env.deleteDrained(ctx, res.Delete); err != nil {
		return err
	}
	// A pod is marked before its ReplicaSet shrinks: had the scale-down come
	// first, the ReplicaSet could pick a pod still serving. Any mark that
	// fails stops the scale-down; one refused because the pod changed since
	// it was judged is no error: the pod's event brings the unit back.
	var marks writebatch.Batch
	for _, pod := range res.Mark {
		marks.Add(func() error { return markForDeletion(ctx, p.env.Client, pod) })
	}
	if err := marks.Run(writebatch.Concurrency); err != nil {
		if conflict.Only(err) {
			return nil
		}
		return err
	}
	var errs []error
	for _, rs := range p.sets[unit] {
		if rs.Name == newName {
			continue
		}
		errs = append(errs, p.scaleOld(ctx, rs, res.OldReplicas[rs.Name], unit))
	}
	errs = append(errs, p.applyNew(ctx, unit, newSet, res.NewReplicas))
	return errors.Join(errs...)
}

// applyNew creates or updates the update revision's ReplicaSet.
func (p *replicaSets) applyNew(ctx context.Context, unit string, existing *appsv1.ReplicaSet, replicas int32) error {
	desired := &appsv1.ReplicaSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.cd.Namespace,
			Name:      replicaSetName(p.cd, unit, p.rev),
			Labels:    map[string]string{cafev1alpha1.DeploymentLabel: p.cd.Name, cafev1alpha1.UnitLabel: unit, cafev1alpha1.RevisionHashLabel: p.rev},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr.To(replicas),
			MinReadySeconds: p.cd.Spec.Strategy.MinReadySeconds,
			Selector:        unitSelector(p.cd, unit),
			Template:        nativeTemplate(p.cd, unit, p.rev),
		},
	}
	desired.Spec.Selector.MatchLabels[cafev1alpha1.RevisionHashLabel] = p.rev
	var current client.Object
	if existing != nil {
		current = existing
	}
	return p.env.applyOwned(ctx, p.cd, desired, current)
}

// scaleOld sets an old revision's ReplicaSet's replicas, and deletes it once
// it has neither replicas nor pods (its revision stays in the history).
func (p *replicaSets) scaleOld(ctx context.Context, rs *appsv1.ReplicaSet, replicas int32, unit string) error {
	if replicas == 0 && ptr.Deref(rs.Spec.Replicas, 0) == 0 && rs.Status.Replicas == 0 && ownedBy(p.pods[unit], rs.Name) == 0 {
		err := p.env.Client.Delete(ctx, rs, client.Preconditions{UID: &rs.UID, ResourceVersion: &rs.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting ReplicaSet %s of an old revision: %w", rs.Name, err)
		}
		return nil
	}
	if ptr.Deref(rs.Spec.Replicas, 0) == replicas {
		return nil
	}
	return scaleReplicas(ctx, p.env.Client, rs, replicas)
}

// markForDeletion gives a drained pod the lowest deletion cost, on the
// version of the pod judged drained (its UID and resourceVersion): a pod
// that changed since (Ready True again) is judged again, not marked.
func markForDeletion(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": pod.UID, "resourceVersion": pod.ResourceVersion,
		"annotations": map[string]string{deletionCostAnnotation: drainedDeletionCost},
	}})
	if err != nil {
		return err
	}
	// A pod already gone needs no mark.
	if err := client.IgnoreNotFound(c.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch))); err != nil {
		return fmt.Errorf("marking drained pod %s for deletion: %w", client.ObjectKeyFromObject(pod), err)
	}
	return nil
}

// scaleReplicas merge-patches spec.replicas, leaving the rest of the object
// (applied by CAFE for its revision) alone.
func scaleReplicas(ctx context.Context, c client.Client, obj client.Object, replicas int32) error {
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("scaling %s to %d: %w", client.ObjectKeyFromObject(obj), replicas, err)
	}
	return nil
}
