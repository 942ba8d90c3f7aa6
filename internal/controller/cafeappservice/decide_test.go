package cafeappservice

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func rev(n int64, hash string, cfg cafev1alpha1.AppConfig, cm string) cafev1alpha1.AppRevision {
	return cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.AppRevisionName("pay", n)},
		Spec:       cafev1alpha1.AppRevisionSpec{App: "pay", Number: n, Hash: hash, Config: cfg, ConfigMapName: cm},
	}
}

func TestDecideRevision(t *testing.T) {
	cfgA := cafev1alpha1.AppConfig{Env: map[string]string{"K": "a"}}
	cfgB := cafev1alpha1.AppConfig{Env: map[string]string{"K": "b"}}
	revs := []cafev1alpha1.AppRevision{rev(2, "h2", cfgA, "pay-r2-config"), rev(4, "h4", cfgB, "pay-r4-config"), rev(5, "h5", cfgA, "pay-r2-config")}
	tests := []struct {
		name    string
		hash    string
		cfg     cafev1alpha1.AppConfig
		counter int64
		want    revisionDecision
	}{
		{"a content a revision holds re-uses it", "h4", cfgB, 5, revisionDecision{Existing: &revs[1]}},
		{"a new content gets the next number and the ConfigMap of the oldest revision with its config", "h6", cfgA, 5,
			revisionDecision{Number: 6, Name: "pay-r6", ConfigMapName: "pay-r2-config"}},
		{"a new config gets a ConfigMap named after the new revision", "h6", cafev1alpha1.AppConfig{Files: map[string]string{"f": "x"}}, 5,
			revisionDecision{Number: 6, Name: "pay-r6", ConfigMapName: "pay-r6-config"}},
		{"an empty config gets no ConfigMap", "h6", cafev1alpha1.AppConfig{}, 5, revisionDecision{Number: 6, Name: "pay-r6"}},
		{"numbers never go back below the counter of collected revisions", "h9", cfgB, 8,
			revisionDecision{Number: 9, Name: "pay-r9", ConfigMapName: "pay-r4-config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := decideRevision("pay", revs, tt.hash, tt.cfg, tt.counter)
			if tt.want.Existing != nil {
				g.Expect(got.Existing).NotTo(BeNil())
				g.Expect(got.Existing.Name).To(Equal(tt.want.Existing.Name))
				return
			}
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestRevisionsToDelete(t *testing.T) {
	held := rev(2, "h2", cafev1alpha1.AppConfig{}, "")
	held.Annotations = map[string]string{cafev1alpha1.HoldAnnotationPrefix + "releaseorder-x": "open"}
	revs := []cafev1alpha1.AppRevision{rev(5, "h5", cafev1alpha1.AppConfig{}, ""), rev(1, "h1", cafev1alpha1.AppConfig{}, ""), held,
		rev(3, "h3", cafev1alpha1.AppConfig{}, ""), rev(4, "h4", cafev1alpha1.AppConfig{}, ""), rev(6, "h6", cafev1alpha1.AppConfig{}, "")}
	names := func(rs []*cafev1alpha1.AppRevision) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	tests := []struct {
		name  string
		limit int
		keep  []string
		want  []string
	}{
		{"within the limit nothing goes", 6, nil, nil},
		{"the oldest go first, the held one stays", 3, nil, []string{"pay-r1", "pay-r3", "pay-r4"}},
		{"published and last successful stay however old", 2, []string{"pay-r1", "pay-r3", "pay-r6"}, []string{"pay-r4", "pay-r5"}},
		{"protected revisions may leave more than the limit", 1, []string{"pay-r1", "pay-r6"}, []string{"pay-r3", "pay-r4", "pay-r5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(names(revisionsToDelete(revs, tt.limit, tt.keep...))).To(Equal(tt.want))
		})
	}
}

func TestTransition(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pub := publication{By: "alice", At: at}
	tests := []struct {
		name        string
		prevNumber  int64
		prevOutcome cafev1alpha1.ReleaseOutcome
		nextNumber  int64
		wantPrev    cafev1alpha1.ReleaseOutcome
	}{
		{"publishing an earlier revision during a release rolls the release back", 3, cafev1alpha1.ReleaseOutcomeReleasing, 2, cafev1alpha1.ReleaseOutcomeRolledBack},
		{"publishing an earlier revision after success rolls it back", 3, cafev1alpha1.ReleaseOutcomeSucceeded, 2, cafev1alpha1.ReleaseOutcomeRolledBack},
		{"publishing a later revision during a release supersedes it", 2, cafev1alpha1.ReleaseOutcomeReleasing, 3, cafev1alpha1.ReleaseOutcomeSuperseded},
		{"publishing a later revision after success keeps the success", 2, cafev1alpha1.ReleaseOutcomeSucceeded, 3, cafev1alpha1.ReleaseOutcomeSucceeded},
		{"a failure stays a failure", 3, cafev1alpha1.ReleaseOutcomeFailed, 2, cafev1alpha1.ReleaseOutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			prev := rev(tt.prevNumber, "p", cafev1alpha1.AppConfig{}, "")
			prev.Status.Outcome = tt.prevOutcome
			next := rev(tt.nextNumber, "n", cafev1alpha1.AppConfig{}, "")
			next.Status.Outcome = cafev1alpha1.ReleaseOutcomeSucceeded
			next.Status.FinishedAt = &at
			transition(&prev, &next, pub)
			g.Expect(prev.Status.Outcome).To(Equal(tt.wantPrev))
			g.Expect(next.Status.Outcome).To(Equal(cafev1alpha1.ReleaseOutcomeReleasing))
			g.Expect(next.Status.PublishedBy).To(Equal("alice"))
			g.Expect(next.Status.PublishedAt).To(HaveValue(Equal(at)))
			g.Expect(next.Status.FinishedAt).To(BeNil())
		})
	}
	t.Run("the first publish has no previous revision", func(t *testing.T) {
		g := NewWithT(t)
		next := rev(1, "n", cafev1alpha1.AppConfig{}, "")
		transition(nil, &next, pub)
		g.Expect(next.Status.Outcome).To(Equal(cafev1alpha1.ReleaseOutcomeReleasing))
	})
}

func TestObserveRelease(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	base := releaseProgress{Exists: true, Revision: "pay-r2", Observed: true, Phase: cafev1alpha1.ReleasePhaseCompleted, Desired: 3, Updated: 3, Available: 3}
	tests := []struct {
		name      string
		progress  func(p releaseProgress) releaseProgress
		want      cafev1alpha1.ReleaseOutcome
		succeeded bool
	}{
		{"every pod updated and available succeeds", func(v releaseProgress) releaseProgress { return v }, cafev1alpha1.ReleaseOutcomeSucceeded, true},
		{"a Completed first template without available pods is still releasing", func(v releaseProgress) releaseProgress { v.Available = 0; return v }, cafev1alpha1.ReleaseOutcomeReleasing, false},
		{"a CafeDeployment that has not seen the template says nothing", func(v releaseProgress) releaseProgress { v.Observed = false; return v }, cafev1alpha1.ReleaseOutcomeReleasing, false},
		{"another revision's release says nothing", func(v releaseProgress) releaseProgress { v.Revision = "pay-r1"; return v }, cafev1alpha1.ReleaseOutcomeReleasing, false},
		{"a failed release fails", func(v releaseProgress) releaseProgress {
			v.Phase = cafev1alpha1.ReleasePhaseFailed
			v.Updated = 1
			return v
		}, cafev1alpha1.ReleaseOutcomeFailed, false},
		{"waiting for a confirmation is releasing", func(v releaseProgress) releaseProgress {
			v.Phase = cafev1alpha1.ReleasePhaseWaitingForConfirm
			v.Updated = 1
			return v
		}, cafev1alpha1.ReleaseOutcomeReleasing, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := rev(2, "h", cafev1alpha1.AppConfig{}, "")
			r.Status.Outcome = cafev1alpha1.ReleaseOutcomeReleasing
			g.Expect(observeRelease(&r, tt.progress(base), now)).To(Equal(tt.succeeded))
			g.Expect(r.Status.Outcome).To(Equal(tt.want))
			if tt.succeeded {
				g.Expect(r.Status.LastSucceededAt).To(HaveValue(Equal(now)))
			}
		})
	}
}

func TestRenderPodTemplateIsDeterministicAndReadsTheRevisionsConfigMap(t *testing.T) {
	g := NewWithT(t)
	r := rev(3, "h", cafev1alpha1.AppConfig{
		Env:       map[string]string{"B": "2", "A": "1"},
		Files:     map[string]string{"z.yaml": "z", "a.yaml": "a"},
		MountPath: "/conf",
	}, "pay-r1-config")
	r.Spec.Template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "i"}},
		Containers:     []corev1.Container{{Name: "app", Image: "a", Env: []corev1.EnvVar{{Name: "OWN", Value: "x"}}}},
	}}
	first := renderPodTemplate("pay", &r)
	for range 5 {
		g.Expect(renderPodTemplate("pay", &r)).To(Equal(first))
	}
	g.Expect(r.Spec.Template.Spec.Containers[0].Env).To(HaveLen(1), "the revision is not changed")
	g.Expect(first.Labels).To(Equal(map[string]string{cafev1alpha1.AppLabel: "pay", cafev1alpha1.AppRevisionLabel: "pay-r3"}))
	for _, c := range append(first.Spec.InitContainers, first.Spec.Containers...) {
		var names []string
		for _, e := range c.Env {
			names = append(names, e.Name)
			if e.ValueFrom != nil {
				g.Expect(e.ValueFrom.ConfigMapKeyRef.Name).To(Equal("pay-r1-config"))
				g.Expect(e.ValueFrom.ConfigMapKeyRef.Key).To(Equal(e.Name))
			}
		}
		g.Expect(names[len(names)-2:]).To(Equal([]string{"A", "B"}), c.Name)
		g.Expect(c.VolumeMounts).To(Equal([]corev1.VolumeMount{{Name: cafev1alpha1.ConfigVolumeName, MountPath: "/conf", ReadOnly: true}}))
	}
	g.Expect(first.Spec.Volumes).To(HaveLen(1))
	g.Expect(first.Spec.Volumes[0].ConfigMap.Name).To(Equal("pay-r1-config"))
	g.Expect(first.Spec.Volumes[0].ConfigMap.Items).To(Equal([]corev1.KeyToPath{{Key: "a.yaml", Path: "a.yaml"}, {Key: "z.yaml", Path: "z.yaml"}}))
}

// A forged revision (content not its hash) named after another number
// than its spec.number must not take the next revision's name: the create
// would fail with AlreadyExists on every reconcile.
func TestObservedOfCountsTheNumberInAForgedRevisionsName(t *testing.T) {
	g := NewWithT(t)
	app := &cafev1alpha1.CafeAppService{ObjectMeta: metav1.ObjectMeta{Name: "pay"}}
	forged := rev(48, "h", cafev1alpha1.AppConfig{}, "")
	forged.Name = "pay-r49"
	o := observedOf(app, []cafev1alpha1.AppRevision{forged}, decideNow)
	g.Expect(o.forged).To(HaveKey("pay-r49"))
	g.Expect(decideRevision("pay", o.revs, "new", cafev1alpha1.AppConfig{}, o.topForged).Name).To(Equal("pay-r50"))

	// A name beyond any number a revision may have can never be reached:
	// it must not push the next number past the CRD's bound.
	huge := rev(3, "h2", cafev1alpha1.AppConfig{}, "")
	huge.Name = "pay-r9223372036854775807"
	o = observedOf(app, []cafev1alpha1.AppRevision{forged, huge}, decideNow)
	g.Expect(o.forged).To(HaveKey(huge.Name))
	g.Expect(decideRevision("pay", o.revs, "new", cafev1alpha1.AppConfig{}, o.topForged).Name).To(Equal("pay-r50"))
}
