package cafeappservice

import (
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// RevisionDeletePath is where the RevisionDeleteGuard is served.
const RevisionDeletePath = "/validate-cafe-io-v1alpha1-apprevision-delete"

// RevisionDeleteGuard refuses deleting the AppRevision an app publishes:
// its pods run it, and it is what a rollback of the next release returns
// to. Deleting the app (or its namespace) takes the revision along: the
// guard lets the deletion through once the app is gone or being deleted.
type RevisionDeleteGuard struct {
	// Reader reads the app from the API server.
	Reader client.Reader
}

// Handle implements admission.Handler.
func (h RevisionDeleteGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Delete {
		return admission.Allowed("")
	}
	rev := &cafev1alpha1.AppRevision{}
	if err := admit.Decode(req.OldObject, rev, "AppRevision"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	app := &cafev1alpha1.CafeAppService{}
	err := h.Reader.Get(ctx, client.ObjectKey{Namespace: rev.Namespace, Name: rev.Spec.App}, app)
	switch {
	case apierrors.IsNotFound(err):
		return admission.Allowed("the app is gone")
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading CafeAppService %s: %w", rev.Spec.App, err))
	}
	if reason := MayDeleteRevision(app, rev); reason != "" {
		return admission.Denied(reason)
	}
	return admission.Allowed("")
}

// MayDeleteRevision returns why rev may not be deleted while app exists,
// or "".
func MayDeleteRevision(app *cafev1alpha1.CafeAppService, rev *cafev1alpha1.AppRevision) string {
	if !app.DeletionTimestamp.IsZero() || app.UID == "" {
		return ""
	}
	if owner := metavOwner(rev); owner != "" && owner != string(app.UID) {
		return "" // not this app's revision
	}
	if app.Spec.PublishedRevision == rev.Name || app.Status.PublishedRevision == rev.Name {
		return fmt.Sprintf("AppRevision %s is published by CafeAppService %s/%s and cannot be deleted; publish another revision first (cafe app publish %s --revision <rN>)",
			rev.Name, app.Namespace, app.Name, app.Name)
	}
	return ""
}

func metavOwner(rev *cafev1alpha1.AppRevision) string {
	for _, ref := range rev.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return string(ref.UID)
		}
	}
	return ""
}
