package inplaceset

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/statuspatch"
	"github.com/cafe-io/cafe/internal/writebatch"
)

// maxCreatesPerSync bounds the pods one reconcile creates, as the
// ReplicaSet controller's burstReplicas does: a set scaled to a huge number
// grows by at most this many pods per sync, each sync paced by the API
// server's answers, and never allocates in proportion to spec.replicas.
const maxCreatesPerSync = 500

// createPods creates the plan's missing pods with slow start: batches of 1,
// 2, 4, ... pods, each batch concurrent, stopping after the first batch
// with an error, so a create the API server refuses (quota, admission) is
// tried once per sync rather than once per missing pod.
func (r *Reconciler) createPods(ctx context.Context, set *cafev1alpha1.InPlaceSet, s *scope, p planResult) error {
	slots := freeSlots(set, s.pods, p.CreateUpdated+p.CreateCurrent)
	_, err := slowStart(len(slots), func(i int) error {
		hash, template := s.updateHash, &set.Spec.Template
		if i >= p.CreateUpdated && s.currentTemplate != nil {
			hash, template = s.currentHash, s.currentTemplate
		}
		pod, err := newPod(set, template, hash, slots[i], r.Scheme)
		if err != nil {
			return err
		}
		if err := r.Client.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating pod %s: %w", pod.Name, err)
		}
		return nil
	})
	return err
}

// slowStart calls create for 0..n-1 in batches that double from one, each
// batch run concurrently (at most writebatch.Concurrency at once), and stops after
// the first batch in which a call failed. It returns how many calls were
// made and their errors joined.
func slowStart(n int, create func(i int) error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		var w writebatch.Batch
		for i := done; i < done+size; i++ {
			w.Add(func() error { return create(i) })
		}
		done += size
		if err := w.Run(writebatch.Concurrency); err != nil {
			return done, err
		}
	}
	return done, nil
}

// specOutOfBounds explains why the controller will not act on set, or is
// empty. The CRD refuses such specs; one admitted without its validation
// (an older CRD) gets a condition instead of pods.
func specOutOfBounds(set *cafev1alpha1.InPlaceSet) string {
	if r := ptr.Deref(set.Spec.Replicas, 1); r > cafev1alpha1.MaxReplicas {
		return fmt.Sprintf("spec.replicas %d is more than the %d CAFE supports; the pods are left as they are", r, cafev1alpha1.MaxReplicas)
	}
	return ""
}

// reportOutOfBounds says on the set's Scaling condition why its controller
// does nothing. It returns no error to retry on: only a spec change (which
// triggers a reconcile) can fix the set.
func (r *Reconciler) reportOutOfBounds(ctx context.Context, set *cafev1alpha1.InPlaceSet, why string) error {
	ctrl.LoggerFrom(ctx).Info("Not acting on an InPlaceSet whose spec is out of bounds", "reason", why)
	before := set.DeepCopy()
	meta.SetStatusCondition(&set.Status.Conditions, metav1.Condition{
		Type: cafev1alpha1.InPlaceSetScalingCondition, Status: metav1.ConditionFalse, ObservedGeneration: set.Generation,
		Reason: cafev1alpha1.InPlaceSetInvalidSpecReason, Message: why,
	})
	_, err := statuspatch.IfChanged(ctx, r.Client, before, set, func(set *cafev1alpha1.InPlaceSet) any { return set.Status })
	return err
}
