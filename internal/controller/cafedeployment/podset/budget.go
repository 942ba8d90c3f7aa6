package podset

import (
	"context"
	"fmt"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create

// ensureEvictionBudget creates the PodDisruptionBudget of a native unit
// (lossless.EvictionBudget over the unit's pods of every revision, named
// like the unit's pod set, owned by the CafeDeployment) when the cache has
// none. (An InPlaceSet keeps its own.)
func (env Env) ensureEvictionBudget(ctx context.Context, cd *cafev1alpha1.CafeDeployment, unit string) error {
	name := podSetName(cd, unit)
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, &policyv1.PodDisruptionBudget{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	pdb := lossless.EvictionBudget(cd.Namespace, name, unitSelector(cd, unit))
	pdb.Labels = map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.UnitLabel: unit}
	if err := controllerutil.SetControllerReference(cd, pdb, env.Scheme); err != nil {
		return err
	}
	if err := env.Client.Create(ctx, pdb); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating PodDisruptionBudget %s: %w", name, err)
	}
	return nil
}
