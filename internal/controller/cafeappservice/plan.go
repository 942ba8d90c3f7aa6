package cafeappservice

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// observed is what a reconcile has read, and the time it decides at.
type observed struct {
	// app is the app as read, defaulted.
	app *cafev1alpha1.CafeAppService
	// revs are the app's revisions as read, with the one stage 1 recorded.
	revs []cafev1alpha1.AppRevision
	// latest names the revision holding the app's current content; it is
	// one of revs once stage 1 is done.
	latest string
	// forged are the app's revisions whose content is not their hash (not
	// recorded by CAFE), by name, with why: never in revs, never run.
	forged map[string]string
	// topForged is the highest number of forged, which CAFE skips.
	topForged int64
	now       time.Time
}

// publishPlan is stage 2: what the Service and the CafeDeployment are made
// to run.
type publishPlan struct {
	// service is the Service source: the published revision's, else the
	// latest's, so the Service changes with a publish, not with an edit.
	service cafev1alpha1.AppServiceSpec
	// published is the revision handed to the CafeDeployment; nil when
	// nothing valid is published, and invalid then says why when something
	// is.
	published *cafev1alpha1.AppRevision
	invalid   string
	// recheck asks for another look soon: what made the publish invalid
	// (the revision's ConfigMap) is nothing the controller watches.
	recheck bool
	// fast asks the CafeDeployment for a release in one group: the app's
	// fast-release annotation names the published revision.
	fast bool
}

// decidePublish decides stage 2 from the revisions stage 1 left.
func decidePublish(o *observed) publishPlan {
	byName := indexByName(o.revs)
	published, invalid := publishedRevision(o.app, byName)
	if why, ok := o.forged[o.app.Spec.PublishedRevision]; ok {
		invalid = "spec.publishedRevision: " + why + "; nothing is released"
	}
	if published == nil {
		return publishPlan{service: byName[o.latest].Spec.Service, invalid: invalid}
	}
	return publishPlan{
		service:   published.Spec.Service,
		published: published,
		fast:      o.app.Annotations[cafev1alpha1.FastReleaseAnnotation] == published.Name,
	}
}

// appPlan is stage 3: what the reconcile records once the CafeDeployment
// runs what stage 2 decided, written in this order.
type appPlan struct {
	// revisions are o.revs, in the same order, with the statuses to write:
	// the publish's transition and the release's outcome together, so each
	// revision gets at most one status write.
	revisions []cafev1alpha1.AppRevision
	// events are recorded once the revision statuses are written.
	events []event
	// collect are the revisions to garbage-collect (in revisions).
	collect []*cafev1alpha1.AppRevision
	// status is the app's status, written last so that a crash before it
	// repeats the publish's transition. The Service's name, the revision
	// list and observedGeneration are the writes' results (see [report]).
	status cafev1alpha1.CafeAppServiceStatus
}

// event is one event on the app, about a revision.
type event struct {
	related        *cafev1alpha1.AppRevision
	reason, action string
	note           string
}

// decideApp decides stage 3 from stage 2's plan and the CafeDeployment as
// the publish left it (nil when there is none).
func decideApp(o *observed, pub publishPlan, cd *cafev1alpha1.CafeDeployment) appPlan {
	p := appPlan{revisions: make([]cafev1alpha1.AppRevision, len(o.revs)), status: *o.app.Status.DeepCopy()}
	for i := range o.revs {
		o.revs[i].DeepCopyInto(&p.revisions[i])
	}
	byName := indexByName(p.revisions)
	latest := byName[o.latest]
	p.status.LatestRevision = latest.Name
	p.status.RevisionCount = max(p.status.RevisionCount, latest.Spec.Number)

	release := releaseProgressOf(cd)
	var published *cafev1alpha1.AppRevision
	if pub.published != nil {
		published = byName[pub.published.Name]
		p.events = publishAndObserve(&p.status, byName, published, release, publicationOf(o.app, o.now), metav1.NewTime(o.now))
	}
	limit := int(ptr.Deref(o.app.Spec.RevisionHistoryLimit, cafev1alpha1.DefaultAppRevisionHistoryLimit))
	p.collect = revisionsToDelete(p.revisions, limit, o.app.Spec.PublishedRevision, p.status.PublishedRevision, p.status.LastSuccessfulRevision, latest.Name)
	setConditions(&p.status, o.app, published, pub.invalid, release)
	return p
}

// publishAndObserve records in the statuses that published is the app's
// published revision — the transition from the previous one when the app
// has not recorded it yet — and the outcome of its release so far.
func publishAndObserve(st *cafev1alpha1.CafeAppServiceStatus, byName map[string]*cafev1alpha1.AppRevision, published *cafev1alpha1.AppRevision, release releaseProgress, pub publication, now metav1.Time) []event {
	var events []event
	if st.PublishedRevision != published.Name {
		transition(byName[st.PublishedRevision], published, pub)
		events = append(events, event{published, "Publish", "Publish", fmt.Sprintf("Publishing %s (by %s)", published.Name, orDash(published.Status.PublishedBy))})
	}
	st.PublishedRevision = published.Name
	if observeRelease(published, release, now) {
		st.LastSuccessfulRevision = published.Name
		events = append(events, event{published, "Released", "Release", published.Name + " runs on every pod"})
	}
	return events
}

// report is the app status to write: the plan's, with the results of the
// writes — the Service's name as the Service write left it, the revisions
// that remain after collection, and the app's generation observed only
// when every write succeeded.
func (p appPlan) report(app *cafev1alpha1.CafeAppService, serviceName string, deleted map[string]bool, writeErr error) cafev1alpha1.CafeAppServiceStatus {
	st := *p.status.DeepCopy()
	st.ServiceName = serviceName
	var remaining []cafev1alpha1.AppRevision
	for _, rev := range p.revisions {
		if !deleted[rev.Name] {
			remaining = append(remaining, rev)
		}
	}
	st.Revisions = summaries(remaining, statusRevisions)
	if writeErr == nil {
		st.ObservedGeneration = app.Generation
	}
	return st
}

// publishedRevision returns the revision spec.publishedRevision names, or
// why it cannot be published.
func publishedRevision(app *cafev1alpha1.CafeAppService, byName map[string]*cafev1alpha1.AppRevision) (*cafev1alpha1.AppRevision, string) {
	name := app.Spec.PublishedRevision
	if name == "" {
		return nil, ""
	}
	if _, ok := cafev1alpha1.ParseAppRevisionName(app.Name, name); !ok {
		return nil, fmt.Sprintf("spec.publishedRevision: %s is not a revision of %s (<app>-r<N>); nothing is released", name, app.Name)
	}
	rev, ok := byName[name]
	if !ok {
		return nil, fmt.Sprintf("spec.publishedRevision: AppRevision %s/%s does not exist or does not belong to %s; nothing is released (list the revisions with: cafe app revisions %s)", app.Namespace, name, app.Name, app.Name)
	}
	return rev, ""
}

// publicationOf reads who published, as CAFE's webhook stamped it.
func publicationOf(app *cafev1alpha1.CafeAppService, now time.Time) publication {
	at := metav1.NewTime(now)
	if t, err := time.Parse(time.RFC3339, app.Annotations[cafev1alpha1.PublishedAtAnnotation]); err == nil {
		at = metav1.NewTime(t)
	}
	by := app.Annotations[cafev1alpha1.PublishedByAnnotation]
	if len(by) > cafev1alpha1.MaxRecordedUserLength {
		by = "" // not CAFE's stamp: its webhook refuses such a user
	}
	return publication{By: by, At: at}
}

// indexByName indexes revs by name, pointing into revs.
func indexByName(revs []cafev1alpha1.AppRevision) map[string]*cafev1alpha1.AppRevision {
	byName := make(map[string]*cafev1alpha1.AppRevision, len(revs))
	for i := range revs {
		byName[revs[i].Name] = &revs[i]
	}
	return byName
}
