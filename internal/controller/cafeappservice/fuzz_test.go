package cafeappservice

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
	"github.com/cafe-io/cafe/test/framework/crdcheck"
)

// FuzzDecideOnAdmittedApps builds a CafeAppService and up to 64
// AppRevisions from the fuzzer's values, keeps those the CRDs admit
// (crdcheck: the API server's schema and CEL validation, in-process), and
// runs the app controller's three stages over them the way Reconcile does
// (decideRevision, decidePublish, decideApp, report) with a fuzzed
// CafeDeployment: never a panic; a new revision's number above every one
// seen; the published revision one of those given or none (and then a
// reason when one is asked for); one status per revision; at most the
// revisions over the history limit collected, never a protected, held or
// deleted one; at most statusRevisions in the app's status; and every
// status it writes (each revision's, the app's) admitted by the CRDs.
// Seeds are in testdata/fuzz/FuzzDecideOnAdmittedApps.
func FuzzDecideOnAdmittedApps(f *testing.F) {
	appV := crdcheck.MustFor(f, "CafeAppService")
	revV := crdcheck.MustFor(f, "AppRevision")
	f.Add("pay", "pay-r2", int32(0), false, "alice", int64(3), uint8(2), uint8(1), uint8(0x13), []byte{1, 1, 0, 2, 2, 1, 3, 0, 3})
	f.Add("pay", "pay-r1", int32(1), true, "", int64(0), uint8(0), uint8(0), uint8(0x01), []byte{1, 2, 0, 2, 1, 2, 3, 3, 2, 4, 0, 4})
	f.Add("web", "web-r9", int32(2), false, "bob", int64(9), uint8(4), uint8(4), uint8(0x21), []byte{4, 0, 8, 5, 0, 16, 6, 0, 32, 9, 4, 1})
	f.Add("pay", "other-r1", int32(100), false, "alice", int64(0), uint8(0), uint8(0), uint8(0), []byte{1, 0, 1})
	// The published revision's release done: it succeeds.
	f.Add("pay", "pay-r1", int32(0), false, "alice", int64(1), uint8(0), uint8(0), uint8(0xcb), []byte{1, 1, 1})
	// Published by a user too long to record (not CAFE's stamp).
	f.Add("pay", "pay-r1", int32(0), false, strings.Repeat("u", 600), int64(1), uint8(0), uint8(0), uint8(0x01), []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, name, published string, limit int32, fast bool, by string, counter int64, statusPublished, lastSuccessful, cdState uint8, revs []byte) {
		ctx := context.Background()
		app, refused, err := crdcheck.Admitted(ctx, appV, fuzzedApp(name, published, limit, fast, by))
		if err != nil {
			t.Fatal(err)
		}
		if refused != nil {
			return
		}
		app.Default()
		// The status as the app's last reconcile left it.
		app.Status.RevisionCount = max(counter, 0)
		if statusPublished > 0 {
			app.Status.PublishedRevision = cafev1alpha1.AppRevisionName(app.Name, int64(statusPublished))
		}
		if lastSuccessful > 0 {
			app.Status.LastSuccessfulRevision = cafev1alpha1.AppRevisionName(app.Name, int64(lastSuccessful))
		}

		now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
		seen := map[string]bool{}
		var top int64
		var listed []cafev1alpha1.AppRevision
		for i := 0; i+2 < len(revs) && i < 3*64; i += 3 {
			r, refused, err := crdcheck.Admitted(ctx, revV, fuzzedRevision(app, revs[i], revs[i+1], revs[i+2]))
			if err != nil {
				t.Fatal(err)
			}
			if refused != nil || seen[r.Name] {
				continue // names are unique in a namespace
			}
			seen[r.Name] = true
			top = max(top, r.Spec.Number)
			if n, ok := cafev1alpha1.ParseAppRevisionName(app.Name, r.Name); ok && n <= cafev1alpha1.MaxRevisionNumber {
				top = max(top, n)
			}
			if revs[i+2]&0x40 != 0 {
				r.DeletionTimestamp = ptr.To(metav1.NewTime(now))
			}
			listed = append(listed, *r)
		}
		o := observedOf(app, listed, now)

		// Stage 1, as recordLatestRevision.
		d := decideRevision(app.Name, o.revs, app.ContentHash(), app.Spec.Config, max(app.Status.RevisionCount, o.topForged))
		if d.Existing != nil {
			o.latest = d.Existing.Name
		} else {
			if d.Number <= max(top, app.Status.RevisionCount) || seen[d.Name] || d.Number > cafev1alpha1.MaxRevisionNumber+1 {
				t.Fatalf("new revision %s (number %d) with revisions up to %d and counter %d", d.Name, d.Number, top, app.Status.RevisionCount)
			}
			r := &cafev1alpha1.AppRevision{
				ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: d.Name, Labels: appSelector(app.Name)},
				Spec: cafev1alpha1.AppRevisionSpec{
					App: app.Name, Number: d.Number, Hash: app.ContentHash(), Template: *app.Spec.Template.DeepCopy(),
					Service: *app.Spec.Service.DeepCopy(), Config: *app.Spec.Config.DeepCopy(), ConfigMapName: d.ConfigMapName,
				},
			}
			if _, refused, err := crdcheck.Admitted(ctx, revV, r); err != nil || refused != nil {
				t.Fatalf("the revision recorded for %s is refused: %v %v", app.Name, err, refused)
			}
			o.revs = append(o.revs, *r)
			o.latest = r.Name
		}

		// Stage 2.
		pub := decidePublish(o)
		if pub.published != nil {
			if pub.published.Name != app.Spec.PublishedRevision || !contains(o.revs, pub.published.Name) || pub.invalid != "" {
				t.Fatalf("publishes %s (%q) for spec.publishedRevision %q", pub.published.Name, pub.invalid, app.Spec.PublishedRevision)
			}
		} else if app.Spec.PublishedRevision != "" && pub.invalid == "" {
			t.Fatalf("spec.publishedRevision %q: nothing published and no reason", app.Spec.PublishedRevision)
		}

		// Stage 3, over the CafeDeployment the publish left.
		cd := fuzzedCafeDeployment(o, pub, cdState)
		before := len(o.revs)
		plan := decideApp(o, pub, cd)
		if len(plan.revisions) != before || len(o.revs) != before {
			t.Fatalf("%d revisions, %d planned", before, len(plan.revisions))
		}
		if len(plan.events) > 2 {
			t.Fatalf("%d events", len(plan.events))
		}
		if st := plan.status.PublishedRevision; st != app.Status.PublishedRevision && !contains(o.revs, st) {
			t.Fatalf("status publishes %s, not a revision", st)
		}
		limit = ptr.Deref(app.Spec.RevisionHistoryLimit, 0)
		keep := map[string]bool{app.Spec.PublishedRevision: true, plan.status.PublishedRevision: true, plan.status.LastSuccessfulRevision: true, o.latest: true}
		collected := map[string]bool{}
		for _, r := range plan.collect {
			if keep[r.Name] || r.IsHeld() || !r.DeletionTimestamp.IsZero() || collected[r.Name] || !contains(plan.revisions, r.Name) {
				t.Fatalf("collects %s: kept %v, held %v, deleted %v, twice %v", r.Name, keep[r.Name], r.IsHeld(), !r.DeletionTimestamp.IsZero(), collected[r.Name])
			}
			collected[r.Name] = true
		}
		if left := before - len(plan.collect); len(plan.collect) > 0 && left < int(limit) {
			t.Fatalf("collects %d of %d revisions, below the limit %d", len(plan.collect), before, limit)
		}
		for i := range plan.revisions {
			if _, refused, err := crdcheck.Admitted(ctx, revV, &plan.revisions[i]); err != nil || refused != nil {
				t.Fatalf("the status of %s is refused: %v %v", plan.revisions[i].Name, err, refused)
			}
		}
		written := app.DeepCopy()
		written.Status = plan.report(app, app.Name, collected, nil)
		if len(written.Status.Revisions) > statusRevisions {
			t.Fatalf("%d revisions in the status", len(written.Status.Revisions))
		}
		if _, refused, err := crdcheck.Admitted(ctx, appV, written); err != nil || refused != nil {
			t.Fatalf("the app's status is refused: %v %v", err, refused)
		}
	})
}

// fuzzedApp is an app named name publishing published, keeping limit
// revisions (0: the default), published by by and fast released when
// fast.
func fuzzedApp(name, published string, limit int32, fast bool, by string) *cafev1alpha1.CafeAppService {
	app := &cafev1alpha1.CafeAppService{
		TypeMeta: metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "CafeAppService"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Generation: 3, Annotations: map[string]string{
			cafev1alpha1.PublishedByAnnotation: by, cafev1alpha1.PublishedAtAnnotation: "2026-01-02T03:04:05Z",
		}},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}}},
			Service:  cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80, TargetPort: 8080}}},
			Config:   cafev1alpha1.AppConfig{Env: map[string]string{"K": "v"}},
			Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](3), Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b"}}},

			PublishedRevision: published,
		},
	}
	if limit != 0 {
		app.Spec.RevisionHistoryLimit = ptr.To(limit)
	}
	if fast {
		app.Annotations[cafev1alpha1.FastReleaseAnnotation] = published
	}
	return app
}

// fuzzedRevision is a revision of app numbered number, with outcome (mod
// 6, 0 none) and flags: 0x01 the app's current content (else an image of
// its own), 0x02 a config of its own, 0x04 held, 0x08 a hash that is not
// its content's (forged), 0x10 named after another number (forged), 0x20
// of another app (refused or forged), 0x80 a message; 0x40 (deleted) is
// set after admission.
func fuzzedRevision(app *cafev1alpha1.CafeAppService, number, outcome, flags byte) *cafev1alpha1.AppRevision {
	r := &cafev1alpha1.AppRevision{
		TypeMeta: metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "AppRevision"},
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: cafev1alpha1.AppRevisionName(app.Name, int64(number)),
			Labels: appSelector(app.Name), CreationTimestamp: metav1.NewTime(time.Unix(int64(number), 0))},
		Spec: cafev1alpha1.AppRevisionSpec{
			App: app.Name, Number: int64(number),
			Template: *app.Spec.Template.DeepCopy(), Service: *app.Spec.Service.DeepCopy(), Config: *app.Spec.Config.DeepCopy(),
		},
	}
	if flags&0x01 == 0 {
		r.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("app:r%d", number)
	}
	if flags&0x02 != 0 {
		r.Spec.Config = cafev1alpha1.AppConfig{Files: map[string]string{"f": fmt.Sprint(number % 3)}, MountPath: cafev1alpha1.DefaultConfigMountPath}
	}
	if !r.Spec.Config.HasEmptyConfig() {
		r.Spec.ConfigMapName = cafev1alpha1.AppConfigMapName(app.Name, int64(number))
	}
	r.Spec.Hash = r.ContentHash()
	if flags&0x04 != 0 {
		r.Annotations = map[string]string{cafev1alpha1.HoldAnnotationPrefix + "releaseorder-x": "open"}
	}
	if flags&0x08 != 0 {
		r.Spec.Hash = "forged"
	}
	if flags&0x10 != 0 {
		r.Name = cafev1alpha1.AppRevisionName(app.Name, int64(number)+1)
	}
	if flags&0x20 != 0 {
		r.Spec.App = app.Name + "x"
	}
	r.Status.Outcome = []cafev1alpha1.ReleaseOutcome{"", cafev1alpha1.ReleaseOutcomeReleasing, cafev1alpha1.ReleaseOutcomeSucceeded,
		cafev1alpha1.ReleaseOutcomeFailed, cafev1alpha1.ReleaseOutcomeRolledBack, cafev1alpha1.ReleaseOutcomeSuperseded}[outcome%6]
	if flags&0x80 != 0 {
		r.Status.Message = "earlier outcome"
	}
	return r
}

// fuzzedCafeDeployment is the app's CafeDeployment after the publish, from
// state: 0x01 it exists, 0x02 its template is the published revision's
// (else the latest's), 0x04 its controller has not seen the template yet,
// bits 3-5 the release phase, bits 6-7 how many of its pods are updated.
func fuzzedCafeDeployment(o *observed, pub publishPlan, state uint8) *cafev1alpha1.CafeDeployment {
	if state&0x01 == 0 {
		return nil
	}
	rev := o.latest
	if pub.published != nil && state&0x02 != 0 {
		rev = pub.published.Name
	}
	cd := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	cd.Spec.Replicas = ptr.To[int32](3)
	cd.Spec.Template.Labels = map[string]string{cafev1alpha1.AppRevisionLabel: rev}
	cd.Status.ObservedGeneration = 2
	if state&0x04 != 0 {
		cd.Status.ObservedGeneration = 1
	}
	cd.Status.UpdateRevision = revision.TemplateHash(&cd.Spec.Template)
	cd.Status.Release.Phase = []cafev1alpha1.ReleasePhase{"", cafev1alpha1.ReleasePhaseCompleted, cafev1alpha1.ReleasePhaseFailed,
		cafev1alpha1.ReleasePhaseWaitingForConfirm, cafev1alpha1.ReleasePhasePaused, cafev1alpha1.ReleasePhaseCompleted,
		cafev1alpha1.ReleasePhaseFailed, cafev1alpha1.ReleasePhaseCompleted}[(state>>3)&0x07]
	cd.Status.Release.CurrentGroup, cd.Status.Release.TotalGroups = ptr.To[int32](1), ptr.To[int32](3)
	cd.Status.UpdatedReplicas = ptr.To(int32(state >> 6))
	cd.Status.AvailableReplicas = ptr.To(int32(state >> 6))
	return cd
}

func contains(revs []cafev1alpha1.AppRevision, name string) bool {
	for i := range revs {
		if revs[i].Name == name {
			return true
		}
	}
	return false
}
