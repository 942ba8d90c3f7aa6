// Package conflict is how CAFE's reconcilers answer a write that lost a
// race (HTTP 409: the object changed since it was read): decide again from
// the fresh object soon, without the rate limiter's growing backoff, which
// a busy object (pods reported by the kubelet, a burst of actions on an
// order) would otherwise push to minutes.
package conflict

import (
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Retry is how soon a reconcile whose writes hit conflicts runs again.
const Retry = 100 * time.Millisecond

// Only reports whether err is a conflict, or errors joined (errors.Join)
// that all are.
func Only(err error) bool {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return apierrors.IsConflict(err)
	}
	for _, e := range joined.Unwrap() {
		if e != nil && !Only(e) {
			return false
		}
	}
	return true
}

// Requeue turns a reconcile's outcome whose error is only conflicts into a
// quick retry; any other outcome is returned as is.
func Requeue(res ctrl.Result, err error) (ctrl.Result, error) {
	if err != nil && Only(err) {
		return ctrl.Result{RequeueAfter: Retry}, nil
	}
	return res, err
}
