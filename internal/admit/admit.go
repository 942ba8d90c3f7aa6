// Package admit holds what CAFE's admission webhooks share: decoding the
// objects of a request, stamping the authenticated user on a change, and
// the answers. It is a leaf below the webhooks, so that each webhook
// package stays independent of the others (test/layering).
package admit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Decode decodes raw, an object of an admission request, into obj. The
// error names what was decoded, e.g. "CafeAppService".
func Decode(raw runtime.RawExtension, obj any, what string) error {
	if err := json.Unmarshal(raw.Raw, obj); err != nil {
		return fmt.Errorf("decoding %s: %w", what, err)
	}
	return nil
}

// DecodeChange decodes the object of req into obj and, on an UPDATE, the
// old object into old, which stays empty on a CREATE: what the request
// changes is obj against old either way.
func DecodeChange(req admission.Request, kind string, obj, old any) error {
	if err := Decode(req.Object, obj, kind); err != nil {
		return err
	}
	if req.Operation == admissionv1.Update {
		return Decode(req.OldObject, old, "the old "+kind)
	}
	return nil
}

// StampFunc writes the user who made the change from old (empty on a
// CREATE) to obj into obj, at now, and says whether it wrote anything. Its
// error refuses the request: a client writing a stamp itself.
type StampFunc[T any] func(old, obj *T, user string, now time.Time) (bool, error)

// Stamp answers a stamping webhook's request on an object of kind: with
// the patch stamp makes, or allowed as it is with the reason unstamped
// when stamp writes nothing, or denied with stamp's error. clock is the
// time; nil means the time of day.
func Stamp[T any](req admission.Request, kind, unstamped string, clock func() time.Time, stamp StampFunc[T]) admission.Response {
	obj, old := new(T), new(T)
	if err := DecodeChange(req, kind, obj, old); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if clock == nil {
		clock = time.Now
	}
	if n := len(req.UserInfo.Username); n > cafev1alpha1.MaxRecordedUserLength {
		return admission.Denied(fmt.Sprintf("the authenticated user name is %d bytes long; CAFE records the user of a %s change and keeps names of at most %d bytes", n, kind, cafev1alpha1.MaxRecordedUserLength))
	}
	stamped, err := stamp(old, obj, req.UserInfo.Username, clock())
	if err != nil {
		return admission.Denied(err.Error())
	}
	if !stamped {
		return admission.Allowed(unstamped)
	}
	return Patch(req, obj)
}

// Patch answers a mutating request with the JSON patch that turns the
// request's object into obj.
func Patch(req admission.Request, obj any) admission.Response {
	raw, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// Verdict answers a validating request with what a rule says of it:
// allowed when err is nil, else denied with err's message, which names the
// field.
func Verdict(err error) admission.Response {
	if err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}

// MayUser asks the API server's authorizer, with a SubjectAccessReview,
// whether the user of an admission request may do what attrs describe. It
// returns the authorizer's reason along with the answer, for the message.
func MayUser(ctx context.Context, c client.Client, user authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (allowed bool, reason string, err error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, Groups: user.Groups, UID: user.UID, Extra: extra, ResourceAttributes: &attrs,
	}}
	if err := c.Create(ctx, sar); err != nil {
		return false, "", fmt.Errorf("asking whether %s may %s %s.%s: %w", user.Username, attrs.Verb, attrs.Resource, attrs.Group, err)
	}
	return sar.Status.Allowed, sar.Status.Reason, nil
}
