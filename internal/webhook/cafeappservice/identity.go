// Package cafeappservice holds the admission webhooks of CafeAppService
// and AppRevision:
//
//   - IdentityStamper (mutating, CafeAppService) records who published —
//     changed spec.publishedRevision, which is also how a rollback is made —,
//     who asked for a fast release and who changed the release strategy
//     (water level, confirmations), with the user the API server
//     authenticated for the request, never a name the client sends. The
//     *-by and *-at annotations can only be written by it. A fast-release
//     request is taken only with the publish it is about, so it cannot
//     skip the confirmations of a release under way.
//   - Validator (validating, CafeAppService) refuses publishing a revision
//     that does not exist or belongs to another app, and specs the CRD's
//     CEL rules cannot judge (config names colliding with the template's,
//     release groups that cannot be planned), naming the field.
//   - RevisionDeleteGuard (validating, AppRevision DELETE) refuses deleting
//     the revision an app publishes.
package cafeappservice

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// MutatePath is where the IdentityStamper is served.
const MutatePath = "/mutate-cafe-io-v1alpha1-cafeappservice"

// stampedAnnotations may only be written by the webhook.
var stampedAnnotations = []string{cafev1alpha1.PublishedByAnnotation, cafev1alpha1.PublishedAtAnnotation,
	cafev1alpha1.FastReleaseByAnnotation, cafev1alpha1.FastReleaseAtAnnotation, cafev1alpha1.StrategyChangedByAnnotation, cafev1alpha1.StrategyChangedAtAnnotation}

// IdentityStamper stamps the authenticated user on publications.
type IdentityStamper struct {
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Handle implements admission.Handler.
func (h *IdentityStamper) Handle(_ context.Context, req admission.Request) admission.Response {
	return admit.Stamp(req, "CafeAppService", "no publication", h.Now, stamp)
}

// stamp writes into app who published, asked for a fast release or
// changed the strategy, comparing with old (empty on create). It refuses a
// request that writes a stamped annotation itself, or asks for a fast
// release without publishing.
func stamp(old, app *cafev1alpha1.CafeAppService, user string, now time.Time) (bool, error) {
	for _, key := range stampedAnnotations {
		if app.Annotations[key] != old.Annotations[key] {
			return false, fmt.Errorf("metadata.annotations[%s]: set by CAFE from the authenticated user; it cannot be written by a client", key)
		}
	}
	set := func(key, value string) {
		if app.Annotations == nil {
			app.Annotations = map[string]string{}
		}
		app.Annotations[key] = value
	}
	published := app.Spec.PublishedRevision != old.Spec.PublishedRevision && app.Spec.PublishedRevision != ""
	stamped := false
	if published {
		set(cafev1alpha1.PublishedByAnnotation, user)
		set(cafev1alpha1.PublishedAtAnnotation, now.UTC().Format(time.RFC3339))
		stamped = true
	}
	if fast := app.Annotations[cafev1alpha1.FastReleaseAnnotation]; fast != "" && fast != old.Annotations[cafev1alpha1.FastReleaseAnnotation] {
		if !published {
			return false, fmt.Errorf("metadata.annotations[%s]: a fast release is asked for with the publish it is about (cafe app rollback --fast, cafe app publish --fast); set alone it would skip the confirmations of the release under way", cafev1alpha1.FastReleaseAnnotation)
		}
		set(cafev1alpha1.FastReleaseByAnnotation, user)
		set(cafev1alpha1.FastReleaseAtAnnotation, now.UTC().Format(time.RFC3339Nano))
		stamped = true
	}
	if app.Spec.Workload.Strategy.ChangedBesidesPause(old.Spec.Workload.Strategy) {
		set(cafev1alpha1.StrategyChangedByAnnotation, user)
		set(cafev1alpha1.StrategyChangedAtAnnotation, now.UTC().Format(time.RFC3339Nano))
		stamped = true
	}
	return stamped, nil
}
