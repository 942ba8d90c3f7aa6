package cafeappservice

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

const (
	r1, r2, r3 = "pay-r1", "pay-r2", "pay-r3"
	publishAt  = "2026-01-02T03:04:05Z"
	completed  = cafev1alpha1.ReleasePhaseCompleted
)

// The outcomes a revision's status records.
const (
	none       = cafev1alpha1.ReleaseOutcome("")
	releasing  = cafev1alpha1.ReleaseOutcomeReleasing
	succeeded  = cafev1alpha1.ReleaseOutcomeSucceeded
	failed     = cafev1alpha1.ReleaseOutcomeFailed
	superseded = cafev1alpha1.ReleaseOutcomeSuperseded
	rolledBack = cafev1alpha1.ReleaseOutcomeRolledBack
)

var decideNow = time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)

// payApp observes the app pay, publishing spec.publishedRevision, with
// the status as read and revisions r1..rN (rN the latest), each with the
// outcome given (in order) and a Service on port 8000+N. Alice published.
func payApp(published string, st cafev1alpha1.CafeAppServiceStatus, outcomes ...cafev1alpha1.ReleaseOutcome) *observed {
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pay", Generation: 7, Annotations: map[string]string{
			cafev1alpha1.PublishedByAnnotation: "alice", cafev1alpha1.PublishedAtAnnotation: publishAt,
		}},
		Spec:   cafev1alpha1.CafeAppServiceSpec{PublishedRevision: published},
		Status: st,
	}
	o := &observed{app: app, now: decideNow}
	for i, outcome := range outcomes {
		r := rev(int64(i+1), "h", cafev1alpha1.AppConfig{}, "")
		r.Spec.Service.Ports = []cafev1alpha1.AppServicePort{{Port: int32(8001 + i)}}
		r.Status.Outcome = outcome
		o.revs = append(o.revs, r)
		o.latest = r.Name
	}
	return o
}

// cdState is the app's CafeDeployment running rev's template (none when
// rev is empty): its release in phase, updated of 3 pods updated and
// available; unseen is a template its controller has not computed its
// status from yet (as right after an apply).
type cdState struct {
	rev     string
	phase   cafev1alpha1.ReleasePhase
	updated int32
	unseen  bool
}

func (s cdState) cafeDeployment() *cafev1alpha1.CafeDeployment {
	if s.rev == "" {
		return nil
	}
	cd := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	cd.Spec.Replicas = ptr.To[int32](3)
	cd.Spec.Template.Labels = map[string]string{cafev1alpha1.AppRevisionLabel: s.rev}
	cd.Status.ObservedGeneration = 2
	if s.unseen {
		cd.Status.ObservedGeneration = 1
	}
	cd.Status.UpdateRevision = revision.TemplateHash(&cd.Spec.Template)
	cd.Status.Release.Phase = s.phase
	cd.Status.UpdatedReplicas = ptr.To(s.updated)
	cd.Status.AvailableReplicas = ptr.To(s.updated)
	return cd
}

func outcomes(revs []cafev1alpha1.AppRevision) map[string]cafev1alpha1.ReleaseOutcome {
	out := map[string]cafev1alpha1.ReleaseOutcome{}
	for _, r := range revs {
		out[r.Name] = r.Status.Outcome
	}
	return out
}

func TestDecidePublish(t *testing.T) {
	tests := []struct {
		name        string
		published   string
		fast        string
		wantRev     string
		wantPort    int32
		wantFast    bool
		wantInvalid string
	}{
		{name: "with nothing published the Service follows the latest revision", wantPort: 8003},
		{name: "the published revision gives the Service its spec, not a later edit", published: r1, wantRev: r1, wantPort: 8001},
		{name: "the fast-release annotation naming the published revision asks for a fast release", published: r2, fast: r2, wantRev: r2, wantPort: 8002, wantFast: true},
		{name: "a fast-release annotation naming another revision asks for nothing", published: r2, fast: r1, wantRev: r2, wantPort: 8002},
		{name: "a name that is not <app>-r<N> is not published", published: "other-r1", wantPort: 8003, wantInvalid: "is not a revision of pay"},
		{name: "a revision the app does not have is not published", published: "pay-r9", wantPort: 8003, wantInvalid: "pay-r9 does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := payApp(tt.published, cafev1alpha1.CafeAppServiceStatus{}, succeeded, none, none)
			if tt.fast != "" {
				o.app.Annotations[cafev1alpha1.FastReleaseAnnotation] = tt.fast
			}
			p := decidePublish(o)
			if tt.wantRev == "" {
				g.Expect(p.published).To(BeNil())
			} else {
				g.Expect(p.published).To(HaveField("Name", tt.wantRev))
			}
			g.Expect(p.service.Ports).To(ConsistOf(HaveField("Port", tt.wantPort)))
			g.Expect(p.fast).To(Equal(tt.wantFast))
			if tt.wantInvalid == "" {
				g.Expect(p.invalid).To(BeEmpty())
			} else {
				g.Expect(p.invalid).To(ContainSubstring(tt.wantInvalid))
			}
		})
	}
}

func TestDecideAppRecordsThePublishAndTheReleaseOutcome(t *testing.T) {
	published := func(rev, lastSuccessful string) cafev1alpha1.CafeAppServiceStatus {
		return cafev1alpha1.CafeAppServiceStatus{PublishedRevision: rev, LastSuccessfulRevision: lastSuccessful}
	}
	tests := []struct {
		name       string
		spec       string
		status     cafev1alpha1.CafeAppServiceStatus
		before     []cafev1alpha1.ReleaseOutcome
		cd         cdState
		after      []cafev1alpha1.ReleaseOutcome
		events     []string
		wantStatus cafev1alpha1.CafeAppServiceStatus
		ready      string
	}{
		{
			name: "a first publish starts the revision's release", spec: r2,
			before: []cafev1alpha1.ReleaseOutcome{none, none}, cd: cdState{rev: r2, unseen: true},
			after: []cafev1alpha1.ReleaseOutcome{none, releasing}, events: []string{"Publish"},
			wantStatus: published(r2, ""), ready: cafev1alpha1.AppReleasingReason,
		},
		{
			name: "publishing a later revision supersedes the release still running", spec: r2, status: published(r1, ""),
			before: []cafev1alpha1.ReleaseOutcome{releasing, none}, cd: cdState{rev: r2, unseen: true},
			after: []cafev1alpha1.ReleaseOutcome{superseded, releasing}, events: []string{"Publish"},
			wantStatus: published(r2, ""), ready: cafev1alpha1.AppReleasingReason,
		},
		{
			name: "publishing an earlier revision rolls the later one back", spec: r1, status: published(r2, r2),
			before: []cafev1alpha1.ReleaseOutcome{succeeded, succeeded}, cd: cdState{rev: r1, unseen: true},
			after: []cafev1alpha1.ReleaseOutcome{releasing, rolledBack}, events: []string{"Publish"},
			wantStatus: published(r1, r2), ready: cafev1alpha1.AppReleasingReason,
		},
		{
			name: "a publish the app has recorded is not transitioned again", spec: r2, status: published(r2, ""),
			before: []cafev1alpha1.ReleaseOutcome{superseded, releasing}, cd: cdState{rev: r2, phase: cafev1alpha1.ReleasePhaseProgressing, updated: 1},
			after:      []cafev1alpha1.ReleaseOutcome{superseded, releasing},
			wantStatus: published(r2, ""), ready: cafev1alpha1.AppReleasingReason,
		},
		{
			name: "a release the CafeDeployment completed succeeds and becomes the last successful", spec: r2, status: published(r2, r1),
			before: []cafev1alpha1.ReleaseOutcome{succeeded, releasing}, cd: cdState{rev: r2, phase: completed, updated: 3},
			after: []cafev1alpha1.ReleaseOutcome{succeeded, succeeded}, events: []string{"Released"},
			wantStatus: published(r2, r2), ready: cafev1alpha1.AppReadyReason,
		},
		{
			name: "a completed release of a template the CafeDeployment has not seen yet says nothing", spec: r2, status: published(r2, r1),
			before: []cafev1alpha1.ReleaseOutcome{succeeded, releasing}, cd: cdState{rev: r2, phase: completed, updated: 3, unseen: true},
			after:      []cafev1alpha1.ReleaseOutcome{succeeded, releasing},
			wantStatus: published(r2, r1), ready: cafev1alpha1.AppReleasingReason,
		},
		{
			name: "a publish whose release has already completed gets the transition and the success in one status", spec: r2, status: published(r1, r1),
			before: []cafev1alpha1.ReleaseOutcome{succeeded, none}, cd: cdState{rev: r2, phase: completed, updated: 3},
			after: []cafev1alpha1.ReleaseOutcome{succeeded, succeeded}, events: []string{"Publish", "Released"},
			wantStatus: published(r2, r2), ready: cafev1alpha1.AppReadyReason,
		},
		{
			name: "a failed release fails the revision and the app is not ready", spec: r2, status: published(r2, r1),
			before: []cafev1alpha1.ReleaseOutcome{succeeded, releasing}, cd: cdState{rev: r2, phase: cafev1alpha1.ReleasePhaseFailed, updated: 1},
			after:      []cafev1alpha1.ReleaseOutcome{succeeded, failed},
			wantStatus: published(r2, r1), ready: cafev1alpha1.AppReleaseFailedReason,
		},
		{
			name: "an invalid publish changes no revision and keeps what the app published", spec: "pay-r9", status: published(r1, r1),
			before: []cafev1alpha1.ReleaseOutcome{succeeded, none}, cd: cdState{rev: r1, phase: completed, updated: 3},
			after:      []cafev1alpha1.ReleaseOutcome{succeeded, none},
			wantStatus: published(r1, r1), ready: cafev1alpha1.AppInvalidPublishReason,
		},
		{
			name:   "with nothing published the app is not ready and nothing is released",
			before: []cafev1alpha1.ReleaseOutcome{none, none},
			after:  []cafev1alpha1.ReleaseOutcome{none, none}, ready: cafev1alpha1.AppNothingPublishedReason,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := payApp(tt.spec, tt.status, tt.before...)
			read := outcomes(o.revs)
			p := decideApp(o, decidePublish(o), tt.cd.cafeDeployment())

			g.Expect(outcomes(o.revs)).To(Equal(read), "what was observed is not changed")
			g.Expect(p.revisions).To(HaveLen(len(o.revs)))
			for i, want := range tt.after {
				g.Expect(p.revisions[i].Name).To(Equal(o.revs[i].Name), "the plan's revisions are in the observed order")
				g.Expect(p.revisions[i].Status.Outcome).To(Equal(want), p.revisions[i].Name)
			}
			var reasons []string
			for _, e := range p.events {
				reasons = append(reasons, e.reason)
				g.Expect(e.related.Name).To(Equal(tt.spec))
			}
			g.Expect(reasons).To(Equal(tt.events))
			g.Expect(p.status.PublishedRevision).To(Equal(tt.wantStatus.PublishedRevision))
			g.Expect(p.status.LastSuccessfulRevision).To(Equal(tt.wantStatus.LastSuccessfulRevision))
			g.Expect(p.status.LatestRevision).To(Equal(r2))
			g.Expect(p.status.RevisionCount).To(Equal(int64(2)))
			ready := meta.FindStatusCondition(p.status.Conditions, cafev1alpha1.AppReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(tt.ready))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(7)))
		})
	}
}

func TestAPublishRecordsWhoPublishedAndWhen(t *testing.T) {
	g := NewWithT(t)
	o := payApp(r2, cafev1alpha1.CafeAppServiceStatus{PublishedRevision: r1}, succeeded, none)
	p := decideApp(o, decidePublish(o), cdState{rev: r2, unseen: true}.cafeDeployment())
	at, err := time.Parse(time.RFC3339, publishAt)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.revisions[1].Status.PublishedBy).To(Equal("alice"))
	g.Expect(p.revisions[1].Status.PublishedAt).To(HaveValue(Equal(metav1.NewTime(at))))
	g.Expect(p.events).To(HaveLen(1))
	g.Expect(p.events[0].note).To(Equal("Publishing pay-r2 (by alice)"))
}

func TestDecideAppCollectsRevisionsBeyondTheLimit(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		status cafev1alpha1.CafeAppServiceStatus
		limit  int32
		want   []string
	}{
		{"within the limit nothing is collected", r2, cafev1alpha1.CafeAppServiceStatus{PublishedRevision: r2}, 5, nil},
		{"the oldest go first, never the published, the last successful or the latest", r3,
			cafev1alpha1.CafeAppServiceStatus{PublishedRevision: r3, LastSuccessfulRevision: r1}, 2, []string{"pay-r2", "pay-r4"}},
		{"a publish keeps the revision being published and the last successful one", "pay-r4",
			cafev1alpha1.CafeAppServiceStatus{PublishedRevision: r2, LastSuccessfulRevision: r2}, 1, []string{r1, r3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := payApp(tt.spec, tt.status, succeeded, succeeded, succeeded, succeeded, succeeded)
			o.app.Spec.RevisionHistoryLimit = ptr.To(tt.limit)
			p := decideApp(o, decidePublish(o), nil)
			var names []string
			for _, r := range p.collect {
				names = append(names, r.Name)
			}
			g.Expect(names).To(Equal(tt.want))
		})
	}
}

func TestReportAddsWhatTheWritesDid(t *testing.T) {
	o := payApp(r1, cafev1alpha1.CafeAppServiceStatus{ObservedGeneration: 6}, succeeded, none, none)
	p := decideApp(o, decidePublish(o), nil)
	tests := []struct {
		name           string
		deleted        map[string]bool
		writeErr       error
		wantRevisions  []string
		wantGeneration int64
	}{
		{"every write done: the remaining revisions, newest first, and the generation observed", map[string]bool{r2: true}, nil, []string{r3, r1}, 7},
		{"a write failed: a revision not deleted is still listed, the generation not observed", map[string]bool{}, errors.New("deleting old revision pay-r2"), []string{r3, r2, r1}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			st := p.report(o.app, "pay", tt.deleted, tt.writeErr)
			var names []string
			for _, s := range st.Revisions {
				names = append(names, s.Name)
			}
			g.Expect(names).To(Equal(tt.wantRevisions))
			g.Expect(st.ObservedGeneration).To(Equal(tt.wantGeneration))
			g.Expect(st.ServiceName).To(Equal("pay"))
			g.Expect(st.PublishedRevision).To(Equal(r1), "the decisions are kept")
		})
	}
}
