package cafeappservice

import (
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// RevisionPath is where the RevisionGuard is served.
const RevisionPath = "/validate-cafe-io-v1alpha1-apprevision"

// RevisionGuard lets only CAFE record AppRevisions: a revision is what an
// approver approves and what runs, so one written by anyone else (with
// an owner reference to the app's UID, it would pass every other check)
// is refused at CREATE, and so is re-pointing a revision's owners.
// Everything else about a revision (annotations, status) stays open.
type RevisionGuard struct {
	// CAFE is the identity CAFE's own client authenticates as.
	CAFE *admit.Self
}

// Handle implements admission.Handler.
func (h RevisionGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Create:
	case admissionv1.Update:
		rev, old := &cafev1alpha1.AppRevision{}, &cafev1alpha1.AppRevision{}
		if err := admit.DecodeChange(req, "AppRevision", rev, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if equality.Semantic.DeepEqual(rev.OwnerReferences, old.OwnerReferences) {
			return admission.Allowed("")
		}
	default:
		return admission.Allowed("")
	}
	self, err := h.CAFE.Username(ctx)
	if err != nil {
		// Fail closed: a revision nobody can vouch for must not exist.
		return admission.Errored(http.StatusServiceUnavailable, err)
	}
	if req.UserInfo.Username == self {
		return admission.Allowed("recorded by CAFE")
	}
	return admission.Denied(RevisionWriteRefusal(req.UserInfo.Username, self, string(req.Operation)))
}

// RevisionWriteRefusal says why user may not create (or re-own) an
// AppRevision, which CAFE (self) alone records.
func RevisionWriteRefusal(user, self, operation string) string {
	what := "create AppRevisions"
	if operation == string(admissionv1.Update) {
		what = "change the owners of an AppRevision"
	}
	return fmt.Sprintf("%s may not %s: CAFE (%s) alone records revisions, from the CafeAppService's spec; edit the app instead (for an image: cafe app set image)", user, what, self)
}
