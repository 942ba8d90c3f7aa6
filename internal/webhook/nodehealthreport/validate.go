// Package nodehealthreport holds the admission webhook that refuses
// NodeHealthReports about nodes (or classic hosts) that do not exist: a report is evidence
// against a node, and evidence against a typo must not wait silently for a
// node of that name to appear. The schema (source, reason, state) is
// checked by the CRD itself.
package nodehealthreport

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// ValidatePath is where the Validator is served.
const ValidatePath = "/validate-cafe-io-v1alpha1-nodehealthreport"

// Validator refuses reports about unknown nodes and classic hosts.
type Validator struct {
	// Reader reads Nodes and ClassicHosts from the API server (one
	// registered a moment ago must be reportable at once: no cache).
	Reader client.Reader
}

// Handle implements admission.Handler.
func (v Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	r := &cafev1alpha1.NodeHealthReport{}
	if err := admit.Decode(req.Object, r, "NodeHealthReport"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var obj client.Object
	var field, kind, name string
	switch {
	case r.Spec.NodeName != "":
		obj, field, kind, name = &corev1.Node{}, "spec.nodeName", "node", r.Spec.NodeName
	case r.Spec.HostName != "":
		obj, field, kind, name = &cafev1alpha1.ClassicHost{}, "spec.hostName", "classic host", r.Spec.HostName
	default:
		return admission.Allowed("") // the schema refuses it, naming the fields
	}
	err := v.Reader.Get(ctx, client.ObjectKey{Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return admission.Denied(fmt.Sprintf("%s: Not found: %s %q does not exist", field, kind, name))
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading %s %s: %w", kind, name, err))
	}
	return admission.Allowed("")
}
