package inplaceset

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// revisionHistory is how many ControllerRevisions an InPlaceSet keeps besides
// the ones its pods still run.
const revisionHistory = 10

// revisionName is the ControllerRevision holding a template of the set.
func revisionName(set *cafev1alpha1.InPlaceSet, hash string) string {
	return set.Name + "-" + hash
}

// ensureRevision records the set's current template as a ControllerRevision,
// so pods of that revision can be compared with (in-place eligibility) or
// recreated from it later.
func ensureRevision(ctx context.Context, c client.Client, scheme *runtime.Scheme, set *cafev1alpha1.InPlaceSet, hash string) error {
	data, err := json.Marshal(set.Spec.Template)
	if err != nil {
		return err
	}
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: set.Namespace,
			Name:      revisionName(set, hash),
			Labels:    map[string]string{cafev1alpha1.RevisionHashLabel: hash, setNameLabel: set.Name},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: set.Generation,
	}
	if err := controllerutil.SetControllerReference(set, rev, scheme); err != nil {
		return err
	}
	if err := c.Create(ctx, rev); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("recording revision %s: %w", rev.Name, err)
	}
	return nil
}

// hasRevision reports whether the revision of hash is among revs.
func hasRevision(revs []appsv1.ControllerRevision, hash string) bool {
	for i := range revs {
		if revs[i].Labels[cafev1alpha1.RevisionHashLabel] == hash {
			return true
		}
	}
	return false
}

// templateOf reads the template recorded for a revision.
func templateOf(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	t := &corev1.PodTemplateSpec{}
	if err := json.Unmarshal(rev.Data.Raw, t); err != nil {
		return nil, fmt.Errorf("decoding revision %s: %w", rev.Name, err)
	}
	return t, nil
}

// inPlaceEligibility answers inPlaceEligible for pods at each revision of
// templates moving to the update revision, comparing each pair of
// templates once per reconcile rather than once per pod.
func inPlaceEligibility(templates map[string]*corev1.PodTemplateSpec, updateHash string) func(fromHash string) bool {
	known := map[string]bool{}
	return func(fromHash string) bool {
		eligible, ok := known[fromHash]
		if !ok {
			eligible = inPlaceEligible(templates[fromHash], templates[updateHash])
			known[fromHash] = eligible
		}
		return eligible
	}
}

// inPlaceEligible reports whether going from one template to the other
// changes only container images and pod labels/annotations — what a kubelet
// can apply by restarting containers, keeping the pod.
func inPlaceEligible(from, to *corev1.PodTemplateSpec) bool {
	if from == nil || len(from.Spec.Containers) != len(to.Spec.Containers) {
		return false
	}
	a, b := from.Spec.DeepCopy(), to.Spec.DeepCopy()
	for i := range a.Containers {
		if a.Containers[i].Name != b.Containers[i].Name {
			return false
		}
		a.Containers[i].Image = b.Containers[i].Image
	}
	return equality.Semantic.DeepEqual(a, b)
}

// gcRevisions deletes the oldest revisions beyond the history limit, never
// one that a pod still runs or the update revision.
func gcRevisions(ctx context.Context, c client.Client, revs []appsv1.ControllerRevision, inUse map[string]bool) error {
	var deletable []appsv1.ControllerRevision
	for _, r := range revs {
		if !inUse[r.Labels[cafev1alpha1.RevisionHashLabel]] {
			deletable = append(deletable, r)
		}
	}
	if len(deletable) <= revisionHistory {
		return nil
	}
	sort.Slice(deletable, func(i, j int) bool {
		return deletable[i].CreationTimestamp.Before(&deletable[j].CreationTimestamp)
	})
	for _, r := range deletable[:len(deletable)-revisionHistory] {
		if err := c.Delete(ctx, &r); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting old revision %s: %w", r.Name, err)
		}
	}
	return nil
}
