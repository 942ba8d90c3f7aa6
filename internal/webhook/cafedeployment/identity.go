// Package cafedeployment holds the admission webhooks of CafeDeployment:
//
//   - IdentityStamper (mutating) records who acted on a release — confirmed a
//     group, paused, resumed, changed the template (a release or a rollback),
//     asked for a fast release, changed the strategy (water level,
//     confirmations) — with the user the API server authenticated for the
//     request, never a name the client sends. The *-by annotations can only
//     be written by it. It refuses a fast-release request that would skip the
//     confirmation a release waits for: that is a confirmation, made as one.
//   - Validator (validating) rejects what the CRD's CEL rules cannot express,
//     with messages that name the field.
package cafedeployment

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// stampedAnnotations may only be written by the webhook.
var stampedAnnotations = []string{cafev1alpha1.ConfirmedByAnnotation, cafev1alpha1.ConfirmedAtAnnotation, cafev1alpha1.PausedByAnnotation, cafev1alpha1.ResumedByAnnotation, cafev1alpha1.ReleasedByAnnotation, cafev1alpha1.ActedAtAnnotation,
	cafev1alpha1.FastReleaseByAnnotation, cafev1alpha1.FastReleaseAtAnnotation, cafev1alpha1.StrategyChangedByAnnotation, cafev1alpha1.StrategyChangedAtAnnotation,
	cafev1alpha1.AnalysisOverriddenByAnnotation, cafev1alpha1.AnalysisOverriddenAtAnnotation}

// MutatePath is where the IdentityStamper is served.
const MutatePath = "/mutate-cafe-io-v1alpha1-cafedeployment"

// +kubebuilder:webhook:path=/mutate-cafe-io-v1alpha1-cafedeployment,mutating=true,failurePolicy=fail,sideEffects=None,groups=cafe.io,resources=cafedeployments,verbs=create;update,versions=v1alpha1,name=identity.cafedeployments.cafe.io,admissionReviewVersions=v1

// IdentityStamper stamps the authenticated user on release actions.
type IdentityStamper struct {
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Handle implements admission.Handler.
func (h *IdentityStamper) Handle(_ context.Context, req admission.Request) admission.Response {
	return admit.Stamp(req, "CafeDeployment", "no release action", h.Now, stamp)
}

// stamp writes into cd who acted, comparing with old (empty on create). It
// refuses a request that writes a stamped annotation itself.
func stamp(old, cd *cafev1alpha1.CafeDeployment, user string, now time.Time) (bool, error) {
	oldAnn, newAnn := old.Annotations, cd.Annotations
	for _, key := range stampedAnnotations {
		if newAnn[key] != oldAnn[key] {
			return false, fmt.Errorf("metadata.annotations[%s]: set by CAFE from the authenticated user; it cannot be written by a client", key)
		}
	}
	// Sub-second precision: two actions by the same user within one second
	// must still carry different stamps, or a client could not tell its own
	// action was recorded (time.RFC3339 parsing accepts the fraction).
	at := now.UTC().Format(time.RFC3339Nano)
	set := func(key, value string) {
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[key] = value
	}
	stamped := false
	if newAnn[cafev1alpha1.ConfirmGroupAnnotation] != oldAnn[cafev1alpha1.ConfirmGroupAnnotation] && newAnn[cafev1alpha1.ConfirmGroupAnnotation] != "" {
		set(cafev1alpha1.ConfirmedByAnnotation, user)
		set(cafev1alpha1.ConfirmedAtAnnotation, at)
		stamped = true
	}
	if overridden(old, cd) {
		if strings.TrimSpace(newAnn[cafev1alpha1.OverrideAnalysisReasonAnnotation]) == "" {
			return false, fmt.Errorf("metadata.annotations[%s]: Required value: overriding an analysis needs a reason (cafe deploy confirm --override-analysis --reason ...)", cafev1alpha1.OverrideAnalysisReasonAnnotation)
		}
		set(cafev1alpha1.AnalysisOverriddenByAnnotation, user)
		set(cafev1alpha1.AnalysisOverriddenAtAnnotation, at)
		stamped = true
	}
	if old.Spec.Strategy.Pause != cd.Spec.Strategy.Pause {
		if cd.Spec.Strategy.Pause {
			set(cafev1alpha1.PausedByAnnotation, user)
		} else {
			set(cafev1alpha1.ResumedByAnnotation, user)
		}
		set(cafev1alpha1.ActedAtAnnotation, at)
		stamped = true
	}
	templateChanged := !equality.Semantic.DeepEqual(old.Spec.Template, cd.Spec.Template)
	if templateChanged {
		set(cafev1alpha1.ReleasedByAnnotation, user)
		set(cafev1alpha1.ActedAtAnnotation, at)
		stamped = true
	}
	if fast := newAnn[cafev1alpha1.FastReleaseAnnotation]; fast != "" && fast != oldAnn[cafev1alpha1.FastReleaseAnnotation] {
		if err := fastReleaseAllowed(old, templateChanged); err != nil {
			return false, err
		}
		set(cafev1alpha1.FastReleaseByAnnotation, user)
		set(cafev1alpha1.FastReleaseAtAnnotation, at)
		stamped = true
	}
	if cd.Spec.Strategy.ChangedBesidesPause(old.Spec.Strategy) {
		set(cafev1alpha1.StrategyChangedByAnnotation, user)
		set(cafev1alpha1.StrategyChangedAtAnnotation, at)
		stamped = true
	}
	return stamped, nil
}

// overridden: the request asks to override an analysis (names a group, or
// gives a new reason for one).
func overridden(old, cd *cafev1alpha1.CafeDeployment) bool {
	group := cd.Annotations[cafev1alpha1.OverrideAnalysisGroupAnnotation]
	return group != "" && (group != old.Annotations[cafev1alpha1.OverrideAnalysisGroupAnnotation] ||
		cd.Annotations[cafev1alpha1.OverrideAnalysisReasonAnnotation] != old.Annotations[cafev1alpha1.OverrideAnalysisReasonAnnotation])
}

// fastReleaseAllowed refuses a fast-release request on the release under
// way while it waits for a confirmation: it would let the release go on
// without one. A fast request that comes with a new template (a fast
// rollback) starts a new release and is allowed.
func fastReleaseAllowed(old *cafev1alpha1.CafeDeployment, templateChanged bool) error {
	rel := old.Status.Release
	if templateChanged || rel.Phase != cafev1alpha1.ReleasePhaseWaitingForConfirm {
		return nil
	}
	return fmt.Errorf("metadata.annotations[%s]: the release of %s waits for a confirmation of group %d: a fast release would skip it; confirm the group instead (cafe deploy confirm %s, or cafe release confirm <order> when a release order runs it), which records who confirmed",
		cafev1alpha1.FastReleaseAnnotation, old.Status.UpdateRevision, ptr.Deref(rel.CurrentGroup, 0), old.Name)
}
