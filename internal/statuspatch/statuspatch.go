// Package statuspatch writes an object's status subresource only when the
// reconcile changed it: one merge patch from the object as read, or no
// request at all. Every CAFE controller reports status through it.
package statuspatch

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// IfChanged patches obj's status to what the reconcile made of it when
// status(obj) differs semantically from status(before), and reports whether
// it wrote. An object deleted meanwhile is not an error (nothing to report
// on). On success obj carries the resourceVersion the write produced.
//
// The patch is sent as a metadata-only request: the API server answers
// with the object's metadata instead of the whole object, which the
// reconcile would only decode to throw away (a CafeDeployment's status
// lists every pod of its release; decoding the answers was a tenth of
// CAFE's CPU during a release).
func IfChanged[T client.Object](ctx context.Context, c client.Client, before, obj T, status func(T) any) (bool, error) {
	if equality.Semantic.DeepEqual(status(before), status(obj)) {
		return false, nil
	}
	key := client.ObjectKeyFromObject(obj)
	data, err := client.MergeFrom(before).Data(obj)
	if err != nil {
		return false, fmt.Errorf("computing the status patch of %s: %w", key, err)
	}
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return false, fmt.Errorf("updating status of %s: %w", key, err)
	}
	written := &metav1.PartialObjectMetadata{}
	written.SetGroupVersionKind(gvk)
	written.Namespace, written.Name = obj.GetNamespace(), obj.GetName()
	if err := c.Status().Patch(ctx, written, client.RawPatch(types.MergePatchType, data)); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("updating status of %s: %w", key, err)
	}
	obj.SetResourceVersion(written.ResourceVersion)
	return true, nil
}
