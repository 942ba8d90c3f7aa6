package podset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/ownedwrite"
)

// fieldOwner is the field manager of the pod sets' specs.
const fieldOwner = client.FieldOwner("cafe-cafedeployment")

// appliedHashAnnotation records the hash of what CAFE last applied to an
// object it owns, so an unchanged desired state costs no API write.
const appliedHashAnnotation = "cafe.io/applied-hash"

// applyOwned writes an object the CafeDeployment controls (its whole spec:
// see ownedwrite for why not server-side apply), unless it already carries
// what would be written.
func (env Env) applyOwned(ctx context.Context, cd *cafev1alpha1.CafeDeployment, desired, existing client.Object) error {
	if err := controllerutil.SetControllerReference(cd, desired, env.Scheme); err != nil {
		return err
	}
	if stampAppliedHash(desired, existing) && !replicasDrifted(desired, existing) {
		return nil
	}
	return ownedwrite.Write(ctx, env.Client, desired, existing, ownedwrite.Options{Owner: fieldOwner})
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
