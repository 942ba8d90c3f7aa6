package podset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// fieldOwner is the server-side-apply manager of the pod sets' specs.
const fieldOwner = client.FieldOwner("cafe-cafedeployment")

// appliedHashAnnotation records the hash of what CAFE last applied to an
// object it owns, so an unchanged desired state costs no API write.
const appliedHashAnnotation = "cafe.io/applied-hash"

// applyOwned server-side-applies an object the CafeDeployment controls,
// unless it already carries what would be applied.
func (env Env) applyOwned(ctx context.Context, cd *cafev1alpha1.CafeDeployment, desired, existing client.Object) error {
	if err := controllerutil.SetControllerReference(cd, desired, env.Scheme); err != nil {
		return err
	}
	if stampAppliedHash(desired, existing) && !replicasDrifted(desired, existing) {
		return nil
	}
	if err := env.Client.Apply(ctx, toApplyConfiguration(desired), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", desired.GetObjectKind().GroupVersionKind().Kind, desired.GetName(), err)
	}
	return nil
}

// stampAppliedHash sets the desired object's applied-hash annotation and
// reports whether the existing object (nil if none) already carries it.
func stampAppliedHash(desired, existing client.Object) (unchanged bool) {
	a := desired.GetAnnotations()
	delete(a, appliedHashAnnotation)
	data, err := json.Marshal(desired)
	if err != nil {
		panic(fmt.Sprintf("marshalling %T cannot fail: %v", desired, err))
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:8])
	if a == nil {
		a = map[string]string{}
	}
	a[appliedHashAnnotation] = hash
	desired.SetAnnotations(a)
	return existing != nil && existing.GetAnnotations()[appliedHashAnnotation] == hash
}

// toApplyConfiguration turns a desired object into an apply request that
// carries only what CAFE sets (no status, no server-filled metadata).
func toApplyConfiguration(obj client.Object) runtime.ApplyConfiguration {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(fmt.Sprintf("converting %T to unstructured cannot fail: %v", obj, err))
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	return client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u})
}
