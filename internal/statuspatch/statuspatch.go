// Package statuspatch writes an object's status subresource only when the
// reconcile changed it: one merge patch from the object as read, or no
// request at all. Every CAFE controller reports status through it.
package statuspatch

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// IfChanged patches obj's status to what the reconcile made of it when
// status(obj) differs semantically from status(before), and reports whether
// it wrote. An object deleted meanwhile is not an error (nothing to report
// on). On success obj carries the resourceVersion the write produced.
func IfChanged[T client.Object](ctx context.Context, c client.Client, before, obj T, status func(T) any) (bool, error) {
	if equality.Semantic.DeepEqual(status(before), status(obj)) {
		return false, nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("updating status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	return true, nil
}
