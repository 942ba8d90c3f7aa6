package app

import (
	"errors"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
)

func TestPublishSetsThePublishedRevisionAndRefusesOthersRevisions(t *testing.T) {
	ctx, g, ns := apiTest(t)
	app := createApp(ctx, g, ns, "pay", "pay:v1")
	other := createApp(ctx, g, ns, "payx", "payx:v1")
	createRevision(ctx, g, app, 1, "pay:v1", nil, "", 0)
	createRevision(ctx, g, app, 2, "pay:v2", nil, "", 0)
	createRevision(ctx, g, other, 1, "payx:v1", nil, "", 0)

	res := run(ctx, ns, "publish", "pay", "--revision", "r2")
	g.Expect(res.Err).NotTo(HaveOccurred(), res.ErrOut)
	g.Expect(res.Out).To(ContainSubstring("published pay-r2 of pay (was -)"))
	g.Expect(stored(ctx, g, app).Spec.PublishedRevision).To(Equal("pay-r2"))

	res = run(ctx, ns, "publish", "pay", "--revision", "pay-r9")
	g.Expect(res.Err).To(MatchError(ContainSubstring("has no revision pay-r9")))
	res = run(ctx, ns, "publish", "pay", "--revision", "payx-r1")
	g.Expect(res.Err).To(MatchError(ContainSubstring(`"payx-r1" is not a revision of app pay`)))
	res = run(ctx, ns, "publish", "pay")
	g.Expect(res.Err).To(MatchError(ContainSubstring("--revision is required")))
	g.Expect(stored(ctx, g, app).Spec.PublishedRevision).To(Equal("pay-r2"), "refused publishes change nothing")
}

// Of publishes that all read the same app, exactly one lands; every other
// fails naming the winner and leaves the winner's revision in place.
func TestConcurrentPublishesHaveExactlyOneWinner(t *testing.T) {
	ctx, g, ns := apiTest(t)
	app := createApp(ctx, g, ns, "race", "race:v1")
	for n := int64(1); n <= 5; n++ {
		createRevision(ctx, g, app, n, "race:v"+string(rune('0'+n)), nil, "", 0)
	}
	seen := stored(ctx, g, app)

	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = publish(ctx, k8sClient, seen, publishRequest{Revision: cafev1alpha1.AppRevisionName("race", int64(i+1)), Verb: "publish"})
		}()
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		if err == nil {
			g.Expect(winner).To(BeEmpty(), "two publishes won")
			winner = cafev1alpha1.AppRevisionName("race", int64(i+1))
			continue
		}
		g.Expect(errors.Is(err, ErrConcurrentPublish)).To(BeTrue(), "publish %d: %v", i+1, err)
	}
	g.Expect(winner).NotTo(BeEmpty())
	g.Expect(stored(ctx, g, app).Spec.PublishedRevision).To(Equal(winner))
	for _, err := range errs {
		if err != nil {
			g.Expect(err.Error()).To(ContainSubstring(winner + " was published by"))
		}
	}

	// A conflict with a write that publishes nothing (the controller's
	// status) is retried, not reported.
	seen = stored(ctx, g, app)
	bumped := seen.DeepCopy()
	bumped.Status.LatestRevision = "race-r5"
	g.Expect(k8sClient.Status().Update(ctx, bumped)).To(Succeed())
	_, err := publish(ctx, k8sClient, seen, publishRequest{Revision: "race-r1", Verb: "publish"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stored(ctx, g, app).Spec.PublishedRevision).To(Equal("race-r1"))
}

func TestRollbackPublishesTheLastSuccessfulEarlierRevision(t *testing.T) {
	ctx, g, ns := apiTest(t)
	app := createApp(ctx, g, ns, "back", "back:v1")
	createRevision(ctx, g, app, 1, "back:v1", nil, cafev1alpha1.ReleaseOutcomeSucceeded, 1)
	createRevision(ctx, g, app, 2, "back:v2", nil, cafev1alpha1.ReleaseOutcomeSucceeded, 2)
	createRevision(ctx, g, app, 3, "back:v3", nil, cafev1alpha1.ReleaseOutcomeFailed, 0)
	createRevision(ctx, g, app, 4, "back:v4", nil, cafev1alpha1.ReleaseOutcomeReleasing, 0)
	g.Expect(run(ctx, ns, "publish", "back", "--revision", "4").Err).NotTo(HaveOccurred())

	res := run(ctx, ns, "rollback", "back", "--to", "r3")
	g.Expect(res.Err).To(MatchError(ContainSubstring("back-r3 never released successfully")))

	res = run(ctx, ns, "rollback", "back", "--fast")
	g.Expect(res.Err).NotTo(HaveOccurred(), res.ErrOut)
	got := stored(ctx, g, app)
	g.Expect(got.Spec.PublishedRevision).To(Equal("back-r2"), "the most recent success")
	g.Expect(got.Annotations).To(HaveKeyWithValue(cafev1alpha1.FastReleaseAnnotation, "back-r2"))
	g.Expect(res.Out).To(ContainSubstring("fast:"))

	res = run(ctx, ns, "rollback", "back", "--to", "back-r1")
	g.Expect(res.Err).NotTo(HaveOccurred(), res.ErrOut)
	got = stored(ctx, g, app)
	g.Expect(got.Spec.PublishedRevision).To(Equal("back-r1"))
	g.Expect(got.Annotations).NotTo(HaveKey(cafev1alpha1.FastReleaseAnnotation), "a grouped rollback drops an earlier fast request")

	res = run(ctx, ns, "rollback", "back", "--to", "1")
	g.Expect(res.Err).To(MatchError(ContainSubstring("already the published revision")))
}

func TestListGetRevisionsAndDiff(t *testing.T) {
	ctx, g, ns := apiTest(t)
	app := createApp(ctx, g, ns, "view", "view:v1")
	createRevision(ctx, g, app, 1, "view:v1", map[string]string{"GREETING": "hello"}, cafev1alpha1.ReleaseOutcomeSucceeded, 1)
	createRevision(ctx, g, app, 2, "view:v2", map[string]string{"GREETING": "bonjour"}, "", 0)
	g.Expect(run(ctx, ns, "publish", "view", "--revision", "r1").Err).NotTo(HaveOccurred())
	st := stored(ctx, g, app)
	st.Status.LatestRevision, st.Status.LastSuccessfulRevision = "view-r2", "view-r1"
	g.Expect(k8sClient.Status().Update(ctx, st)).To(Succeed())

	res := run(ctx, ns, "list")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(MatchRegexp(`view\s+view-r2\s+view-r1\s+view-r1`))

	res = run(ctx, ns, "revisions", "view")
	g.Expect(res.Err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimSpace(res.Out), "\n")
	g.Expect(lines).To(HaveLen(3))
	g.Expect(lines[1]).To(MatchRegexp(`^view-r1 .*app=view:v1.*Succeeded.*published,last-successful$`))
	g.Expect(lines[2]).To(MatchRegexp(`^view-r2 .*app=view:v2.*latest$`))

	res = run(ctx, ns, "get", "view")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(ContainSubstring("Published:        view-r1"))
	g.Expect(res.Out).To(ContainSubstring("Release:          - (nothing published yet)"))
	g.Expect(res.Out).To(ContainSubstring("Endpoints:        the Service's selector"), "the default")

	res = run(ctx, ns, "diff", "view", "r1", "r2")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(HavePrefix("differs in more than images: config changed (the pods read another ConfigMap: they are recreated)\n--- view-r1\n+++ view-r2\n"))
	g.Expect(res.Out).To(ContainSubstring("-    - image: view:v1\n+    - image: view:v2\n"))
	g.Expect(res.Out).To(ContainSubstring("-  env.GREETING: \"hello\"\n+  env.GREETING: \"bonjour\"\n"))
	g.Expect(res.Out).NotTo(ContainSubstring("-    limit: 10"), "unchanged file lines are context, not changes")

	res = run(ctx, ns, "diff", "view-r1", "view-r1")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(ContainSubstring("have the same template, service and config"))
}

// The summary of a diff names every difference but container images by
// field path, so a change that recreates pods is obvious before publishing.
func TestDiffSummaryNamesEveryNonImageDifference(t *testing.T) {
	g := NewWithT(t)
	base := func() *cafev1alpha1.AppRevisionSpec {
		return &cafev1alpha1.AppRevisionSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "pay:v1", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "migrate:v1"}},
		}}}
	}
	images, other := summarizeChange(base(), base())
	g.Expect(images).To(BeEmpty())
	g.Expect(other).To(BeEmpty())

	b := base()
	b.Template.Spec.Containers[0].Image = "pay:v2"
	images, other = summarizeChange(base(), b)
	g.Expect(images).To(Equal([]string{"app pay:v1 → pay:v2"}))
	g.Expect(other).To(BeEmpty())

	b.Template.Spec.Containers[0].Ports = nil
	b.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")}
	b.Template.Spec.InitContainers[0].Image = "migrate:v2"
	b.Template.Spec.Containers = append(b.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "s:v1"})
	b.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	b.Template.Labels = map[string]string{"tier": "web"}
	b.Config.Env = map[string]string{"A": "1"}
	images, other = summarizeChange(base(), b)
	g.Expect(images).To(Equal([]string{"app pay:v1 → pay:v2"}))
	g.Expect(other).To(Equal([]string{
		"containers[0].ports removed", "containers[0].resources added", "containers[1] added",
		"initContainers[0].image changed (init container migrate migrate:v1 → migrate:v2: pods are recreated)",
		"spec.nodeSelector added", "metadata.labels added",
		"config changed (the pods read another ConfigMap: they are recreated)",
	}))
}

func TestUnifiedDiff(t *testing.T) {
	g := NewWithT(t)
	var b strings.Builder
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	c := "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n"
	writeUnifiedDiff(&b, "a", "b", a, c, 1)
	g.Expect(b.String()).To(Equal("--- a\n+++ b\n@@ -2,3 +2,3 @@\n 2\n-3\n+three\n 4\n@@ -12,1 +12,2 @@\n 12\n+13\n"))
}

func TestDiffArgs(t *testing.T) {
	g := NewWithT(t)
	app, a, b, err := diffArgs([]string{"pay-r2", "pay-r10"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect([]string{app, a, b}).To(Equal([]string{"pay", "pay-r2", "pay-r10"}))
	_, _, _, err = diffArgs([]string{"pay-r2", "shop-r3"})
	g.Expect(err).To(MatchError(ContainSubstring("not two revisions of one app")))
	app, a, b, err = diffArgs([]string{"my-app", "r1", "2"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect([]string{app, a, b}).To(Equal([]string{"my-app", "r1", "2"}))
}

// `cafe app set image` patches the named images, init containers too, and
// nothing else; the revision to be is the next number, or the revision
// already holding that content.
func TestSetImageChangesOnlyTheNamedImages(t *testing.T) {
	ctx, g, ns := apiTest(t)
	app := createApp(ctx, g, ns, "pay", "pay:v1")
	g.Expect(framework.Update(ctx, k8sClient, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
		a.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate:v1"}}
	})).To(Succeed())
	before := stored(ctx, g, app)

	res := run(ctx, ns, "set", "image", "pay", "app=pay:v2", "migrate=migrate:v2")
	g.Expect(res.Err).NotTo(HaveOccurred(), res.ErrOut)
	g.Expect(res.Out).To(ContainSubstring("app pay:v1 → pay:v2, migrate migrate:v1 → migrate:v2"))
	g.Expect(res.Out).To(ContainSubstring("revision to be: pay-r1"), "no revision recorded yet")
	want := before.Spec.Template.DeepCopy()
	want.Spec.Containers[0].Image, want.Spec.InitContainers[0].Image = "pay:v2", "migrate:v2"
	g.Expect(stored(ctx, g, app).Spec.Template).To(Equal(*want))

	res = run(ctx, ns, "set", "image", "pay", "app=pay:v2")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(ContainSubstring("nothing to do"))
	res = run(ctx, ns, "set", "image", "pay", "app=pay:v3", "app=pay:v4")
	g.Expect(res.Err).To(MatchError(ContainSubstring(`container "app" is named twice`)))
}
