package cafeappservice

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

// releaseProgress is how far the app's CafeDeployment has released its
// template: what the app controller reads from it.
type releaseProgress struct {
	// Exists is false before the first publish.
	Exists bool
	// Revision is the AppRevision the CafeDeployment's template is
	// rendered from (its cafe.io/app-revision label).
	Revision string
	// Observed is true once the CafeDeployment controller has computed its
	// status from the current template (generation observed, update
	// revision equal to the template's hash), so Phase is about Revision.
	Observed bool
	// Phase, CurrentGroup, TotalGroups come from status.release.
	Phase        cafev1alpha1.ReleasePhase
	CurrentGroup int32
	TotalGroups  int32
	// Desired, Updated and Available are pod counts.
	Desired, Updated, Available int32
}

// releaseProgressOf reads a CafeDeployment; nil means it does not exist.
func releaseProgressOf(cd *cafev1alpha1.CafeDeployment) releaseProgress {
	if cd == nil {
		return releaseProgress{}
	}
	return releaseProgress{
		Exists:       true,
		Revision:     cd.Spec.Template.Labels[cafev1alpha1.AppRevisionLabel],
		Observed:     cd.Status.ObservedGeneration == cd.Generation && cd.Status.UpdateRevision == revision.DeploymentHash(cd),
		Phase:        cd.Status.Release.Phase,
		CurrentGroup: ptr.Deref(cd.Status.Release.CurrentGroup, 0),
		TotalGroups:  ptr.Deref(cd.Status.Release.TotalGroups, 0),
		Desired:      ptr.Deref(cd.Spec.Replicas, cafev1alpha1.DefaultReplicas),
		Updated:      ptr.Deref(cd.Status.UpdatedReplicas, 0),
		Available:    ptr.Deref(cd.Status.AvailableReplicas, 0),
	}
}

// releasing reports whether the progress is rev's release, as seen by the
// CafeDeployment controller.
func (p releaseProgress) releasing(rev string) bool {
	return p.Exists && p.Observed && p.Revision == rev
}

// done reports whether every pod runs the released revision and is
// available. The CafeDeployment reports Completed for a first template
// before any pod exists (creating pods is not a release), so the pod
// counts decide too.
func (p releaseProgress) done() bool {
	return p.Phase == cafev1alpha1.ReleasePhaseCompleted && p.Updated >= p.Desired && p.Available >= p.Desired
}

// publication is one act of publishing, as stamped on the app.
type publication struct {
	By string
	At metav1.Time
}

// transition records that the app's published revision moved from prev
// (nil when nothing was published, or it is gone) to next: prev's release
// ends — RolledBack when next is an earlier revision, Superseded when a
// later one replaced it before it finished — and next's release starts.
// It changes the statuses in place.
//
//	prev Releasing ──publish earlier──▶ RolledBack
//	prev Releasing ──publish later────▶ Superseded
//	prev Succeeded ──publish earlier──▶ RolledBack (lastSucceededAt kept)
//	prev Succeeded ──publish later────▶ Succeeded  (a roll forward)
//	prev Failed    ──publish anything─▶ Failed
func transition(prev, next *cafev1alpha1.AppRevision, pub publication) {
	if prev != nil && prev.Name != next.Name {
		rollback := next.Spec.Number < prev.Spec.Number
		switch {
		case rollback && (prev.Status.Outcome == cafev1alpha1.ReleaseOutcomeReleasing || prev.Status.Outcome == cafev1alpha1.ReleaseOutcomeSucceeded):
			prev.Status.Outcome = cafev1alpha1.ReleaseOutcomeRolledBack
			prev.Status.FinishedAt = ptr.To(pub.At)
			prev.Status.Message = fmt.Sprintf("rolled back to %s", next.Name)
		case !rollback && prev.Status.Outcome == cafev1alpha1.ReleaseOutcomeReleasing:
			prev.Status.Outcome = cafev1alpha1.ReleaseOutcomeSuperseded
			prev.Status.FinishedAt = ptr.To(pub.At)
			prev.Status.Message = fmt.Sprintf("%s was published before this release finished", next.Name)
		}
	}
	next.Status.Outcome = cafev1alpha1.ReleaseOutcomeReleasing
	next.Status.PublishedAt = ptr.To(pub.At)
	next.Status.PublishedBy = pub.By
	next.Status.FinishedAt = nil
	next.Status.Message = ""
	if prev != nil && next.Spec.Number < prev.Spec.Number {
		next.Status.Message = fmt.Sprintf("rollback from %s", prev.Name)
	}
}

// observeRelease updates the published revision's outcome from the
// CafeDeployment's release, once that controller has seen the revision's
// template. It returns true when the revision has just succeeded.
func observeRelease(rev *cafev1alpha1.AppRevision, release releaseProgress, now metav1.Time) bool {
	if !release.releasing(rev.Name) {
		return false
	}
	switch {
	case release.done():
		if rev.Status.Outcome == cafev1alpha1.ReleaseOutcomeSucceeded {
			return false
		}
		rev.Status.Outcome = cafev1alpha1.ReleaseOutcomeSucceeded
		rev.Status.FinishedAt = ptr.To(now)
		rev.Status.LastSucceededAt = ptr.To(now)
		rev.Status.Message = fmt.Sprintf("%d of %d pods run %s", release.Updated, release.Desired, rev.Name)
		return true
	case release.Phase == cafev1alpha1.ReleasePhaseFailed:
		if rev.Status.Outcome != cafev1alpha1.ReleaseOutcomeFailed {
			rev.Status.Outcome = cafev1alpha1.ReleaseOutcomeFailed
			rev.Status.FinishedAt = ptr.To(now)
			rev.Status.Message = fmt.Sprintf("the CafeDeployment's release stopped at group %d of %d", release.CurrentGroup, release.TotalGroups)
		}
	case rev.Status.Outcome == "":
		rev.Status.Outcome = cafev1alpha1.ReleaseOutcomeReleasing
	}
	return false
}

// setConditions sets Ready and Releasing in the app's status st from the
// published revision (nil when nothing valid is published; invalid then
// says why) and the CafeDeployment's release.
func setConditions(st *cafev1alpha1.CafeAppServiceStatus, app *cafev1alpha1.CafeAppService, published *cafev1alpha1.AppRevision, invalid string, release releaseProgress) {
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: app.Generation})
	}
	notReleasing := func(msg string) {
		set(cafev1alpha1.AppReleasingCondition, metav1.ConditionFalse, cafev1alpha1.AppNotReleasingReason, msg)
	}
	switch {
	case invalid != "":
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppInvalidPublishReason, invalid)
		notReleasing("nothing valid is published")
		return
	case published == nil:
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppNothingPublishedReason,
			fmt.Sprintf("no revision is published; publish one with: cafe app publish %s --revision %s", app.Name, orDash(st.LatestRevision)))
		notReleasing("no revision is published")
		return
	}
	name := published.Name
	progress := fmt.Sprintf("%s: %d of %d pods updated, %d available; release %s at group %d of %d",
		name, release.Updated, release.Desired, release.Available, orDash(string(release.Phase)), release.CurrentGroup, release.TotalGroups)
	switch {
	case !release.releasing(name):
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppReleasingReason, name+" is handed to the CafeDeployment; its release has not started yet")
		set(cafev1alpha1.AppReleasingCondition, metav1.ConditionTrue, cafev1alpha1.AppReleasingReason, name+" is handed to the CafeDeployment")
	case release.done():
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionTrue, cafev1alpha1.AppReadyReason, progress)
		notReleasing(name + " is released")
	case release.Phase == cafev1alpha1.ReleasePhaseFailed:
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppReleaseFailedReason, progress)
		notReleasing("the release of " + name + " failed; see `cafe deploy status " + app.Name + "`")
	case release.Phase == cafev1alpha1.ReleasePhaseWaitingForConfirm:
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppReleasingReason, progress)
		set(cafev1alpha1.AppReleasingCondition, metav1.ConditionTrue, cafev1alpha1.AppWaitingReason, progress+"; confirm with: cafe deploy confirm "+app.Name)
	case release.Phase == cafev1alpha1.ReleasePhasePaused:
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppReleasingReason, progress)
		set(cafev1alpha1.AppReleasingCondition, metav1.ConditionTrue, cafev1alpha1.AppWaitingReason, progress+"; resume with: cafe deploy resume "+app.Name)
	default:
		set(cafev1alpha1.AppReadyCondition, metav1.ConditionFalse, cafev1alpha1.AppReleasingReason, progress)
		set(cafev1alpha1.AppReleasingCondition, metav1.ConditionTrue, cafev1alpha1.AppReleasingReason, progress)
	}
}

// summaries lists revs newest first for the app's status, at most max.
func summaries(revs []cafev1alpha1.AppRevision, limit int) []cafev1alpha1.AppRevisionSummary {
	sorted := byNumber(revs)
	out := make([]cafev1alpha1.AppRevisionSummary, 0, min(len(sorted), limit))
	for i := len(sorted) - 1; i >= 0 && len(out) < limit; i-- {
		r := sorted[i]
		out = append(out, cafev1alpha1.AppRevisionSummary{Name: r.Name, Number: r.Spec.Number, Created: r.CreationTimestamp, Hash: r.Spec.Hash, Outcome: r.Status.Outcome})
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
