package inplaceset

import (
	"context"
	"fmt"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create

// ensureEvictionBudget creates the set's PodDisruptionBudget
// (lossless.EvictionBudget, named like the set, selecting its pods by
// cafe.io/inplaceset) when the cache has none; deleting it recreates it.
func (r *Reconciler) ensureEvictionBudget(ctx context.Context, set *cafev1alpha1.InPlaceSet) error {
	// Only its metadata is cached (the controller owns it OnlyMetadata).
	existing := &metav1.PartialObjectMetadata{}
	existing.SetGroupVersionKind(policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"))
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(set), existing)
	if !apierrors.IsNotFound(err) {
		return err
	}
	pdb := lossless.EvictionBudget(set.Namespace, set.Name, &metav1.LabelSelector{MatchLabels: map[string]string{setNameLabel: set.Name}})
	if err := controllerutil.SetControllerReference(set, pdb, r.Scheme); err != nil {
		return err
	}
	if err := r.Client.Create(ctx, pdb); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating PodDisruptionBudget %s: %w", pdb.Name, err)
	}
	return nil
}
