package cafeappservice_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Every new content of template, service and config becomes one revision;
// revisions with the same config share its ConfigMap; an edit back to an
// earlier content re-uses that revision; nothing runs until a revision is
// published.
func TestEachNewContentRecordsOneRevisionAndAnEditBackReusesIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "pay", "example.com/pay:v1")
	createApp(ctx, t, g, app)

	r1 := waitForLatest(ctx, g, app)
	g.Expect(r1.Name).To(Equal("pay-r1"))
	g.Expect(r1.Spec.App).To(Equal("pay"))
	g.Expect(r1.Spec.Number).To(Equal(int64(1)))
	g.Expect(r1.Spec.Hash).NotTo(BeEmpty())
	g.Expect(r1.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/pay:v1"))
	g.Expect(r1.Spec.Config.Env).To(Equal(map[string]string{"GREETING": "hello"}))
	g.Expect(r1.Spec.ConfigMapName).To(Equal("pay-r1-config"))
	g.Expect(metav1.GetControllerOf(r1)).NotTo(BeNil())
	g.Expect(metav1.GetControllerOf(r1).Kind).To(Equal("CafeAppService"))

	cm := &corev1.ConfigMap{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay-r1-config"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(Equal(map[string]string{"GREETING": "hello", "app.yaml": "limit: 10\n"}))
	g.Expect(cm.Immutable).To(HaveValue(BeTrue()))

	// The Service exists before anything is published; its selector is the
	// app's alone.
	svc := &corev1.Service{}
	g.Eventually(func() error { return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay"}, svc) }).Should(Succeed())
	g.Expect(svc.Spec.Selector).To(Equal(map[string]string{cafev1alpha1.AppLabel: "pay"}))
	g.Expect(svc.Spec.Ports).To(HaveLen(1))
	g.Expect(svc.Spec.Ports[0].Port).To(Equal(int32(80)))
	g.Expect(svc.Spec.Ports[0].TargetPort.IntValue()).To(Equal(8080))

	// An image edit: r2, which shares r1's ConfigMap (same config).
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Template.Spec.Containers[0].Image = "example.com/pay:v2" })
	r2 := waitForLatest(ctx, g, app)
	g.Expect(r2.Name).To(Equal("pay-r2"))
	g.Expect(r2.Spec.ConfigMapName).To(Equal("pay-r1-config"))
	g.Expect(r2.Spec.Hash).NotTo(Equal(r1.Spec.Hash))
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay-r1-config"}, cm)).To(Succeed())
		var owners []string
		for _, ref := range cm.OwnerReferences {
			owners = append(owners, ref.Name)
		}
		g.Expect(owners).To(ConsistOf("pay-r1", "pay-r2"), "the ConfigMap lives as long as a revision reading it")
	}).Should(Succeed())

	// A config edit: r3 with a ConfigMap of its own.
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Env["GREETING"] = "bonjour" })
	r3 := waitForLatest(ctx, g, app)
	g.Expect(r3.Name).To(Equal("pay-r3"))
	g.Expect(r3.Spec.ConfigMapName).To(Equal("pay-r3-config"))
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay-r3-config"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("GREETING", "bonjour"))

	// Back to r2's content: r2 again, no r4.
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Env["GREETING"] = "hello" })
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("pay-r2"))
	g.Expect(revisionNames(ctx, g, ns)).To(Equal([]string{"pay-r1", "pay-r2", "pay-r3"}))

	// Nothing was published, so nothing runs.
	got := getApp(ctx, g, app)
	g.Expect(got.Status.RevisionCount).To(Equal(int64(3)))
	g.Expect(got.Status.Revisions).To(HaveLen(3))
	g.Expect(got.Status.Revisions[0].Name).To(Equal("pay-r3"), "newest first")
	ready := meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.AppReadyCondition)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Reason).To(Equal(cafev1alpha1.AppNothingPublishedReason))
	err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay"}, &cafev1alpha1.CafeDeployment{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "editing the template must not release anything: %v", err)
}

// Publishing hands the revision's rendered template to the CafeDeployment
// with the app's strategy; the revision's outcome follows the release; a
// rollback to an earlier revision marks the later one RolledBack; --fast
// carries the CafeDeployment's template hash; the Service keeps its
// ClusterIP throughout.
func TestPublishReleasesTheRevisionAndRecordsItsOutcome(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "shop", "example.com/shop:v1")
	createApp(ctx, t, g, app)
	waitForLatest(ctx, g, app)
	svc := &corev1.Service{}
	g.Eventually(func() error { return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, svc) }).Should(Succeed())
	clusterIP := svc.Spec.ClusterIP
	g.Expect(clusterIP).NotTo(BeEmpty())

	publish(ctx, g, app, "shop-r1")
	cd := &cafev1alpha1.CafeDeployment{}
	g.Eventually(func() error { return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, cd) }).Should(Succeed())
	g.Expect(cd.Spec.Selector.MatchLabels).To(Equal(map[string]string{cafev1alpha1.AppLabel: "shop"}))
	g.Expect(cd.Spec.Endpoints).To(BeNil(), "the Service's selector publishes the pods")
	g.Expect(cd.Spec.Replicas).To(HaveValue(Equal(int32(3))))
	g.Expect(cd.Spec.Strategy.UpgradeType).To(Equal(cafev1alpha1.UpgradeTypeBatch))
	g.Expect(cd.Spec.Strategy.MinAvailable).To(Equal(app.Spec.Workload.Strategy.MinAvailable))
	tpl := cd.Spec.Template
	g.Expect(tpl.Labels).To(Equal(map[string]string{"tier": "web", cafev1alpha1.AppLabel: "shop", cafev1alpha1.AppRevisionLabel: "shop-r1"}))
	c := tpl.Spec.Containers[0]
	g.Expect(c.Env).To(HaveLen(1))
	g.Expect(c.Env[0].Name).To(Equal("GREETING"))
	g.Expect(c.Env[0].ValueFrom.ConfigMapKeyRef.Name).To(Equal("shop-r1-config"))
	g.Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: cafev1alpha1.ConfigVolumeName, MountPath: cafev1alpha1.DefaultConfigMountPath, ReadOnly: true}))
	g.Expect(tpl.Spec.Volumes).To(HaveLen(1))
	g.Expect(tpl.Spec.Volumes[0].ConfigMap.Name).To(Equal("shop-r1-config"))
	g.Expect(metav1.GetControllerOf(cd).Kind).To(Equal("CafeAppService"))

	r1 := waitForOutcome(ctx, g, ns, "shop-r1", cafev1alpha1.ReleaseOutcomeSucceeded)
	g.Expect(r1.Status.PublishedAt).NotTo(BeNil())
	g.Expect(r1.Status.LastSucceededAt).NotTo(BeNil())
	g.Eventually(func(g Gomega) {
		a := getApp(ctx, g, app)
		g.Expect(a.Status.PublishedRevision).To(Equal("shop-r1"))
		g.Expect(a.Status.LastSuccessfulRevision).To(Equal("shop-r1"))
		g.Expect(meta.IsStatusConditionTrue(a.Status.Conditions, cafev1alpha1.AppReadyCondition)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(a.Status.Conditions, cafev1alpha1.AppReleasingCondition)).To(BeFalse())
	}).Should(Succeed())
	before := podIdentities(listPods(ctx, g, ns))
	g.Expect(before).To(HaveLen(3))

	// r2 changes only the image: the pods are updated in place.
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Template.Spec.Containers[0].Image = "example.com/shop:v2" })
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("shop-r2"))
	publish(ctx, g, app, "shop-r2")
	waitForOutcome(ctx, g, ns, "shop-r2", cafev1alpha1.ReleaseOutcomeSucceeded)
	pods := listPods(ctx, g, ns)
	g.Expect(podIdentities(pods)).To(Equal(before), "an image-only revision keeps every pod")
	for _, p := range pods {
		g.Expect(p.Spec.Containers[0].Image).To(Equal("example.com/shop:v2"))
		g.Expect(p.Labels).To(HaveKeyWithValue(cafev1alpha1.AppRevisionLabel, "shop-r2"))
	}
	g.Expect(getRevision(ctx, g, ns, "shop-r1").Status.Outcome).To(Equal(cafev1alpha1.ReleaseOutcomeSucceeded), "a roll forward leaves the earlier outcome")

	// r3 changes the config: the pods read r3's ConfigMap.
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Env["GREETING"] = "bonjour" })
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("shop-r3"))
	publish(ctx, g, app, "shop-r3")
	waitForOutcome(ctx, g, ns, "shop-r3", cafev1alpha1.ReleaseOutcomeSucceeded)
	g.Eventually(func(g Gomega) {
		pods := listPods(ctx, g, ns)
		g.Expect(pods).To(HaveLen(3))
		for _, p := range pods {
			g.Expect(p.Spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name).To(Equal("shop-r3-config"))
		}
	}).Should(Succeed())

	// A fast rollback to r2: r3 is RolledBack, the CafeDeployment releases
	// r2 in one group, and r2's ConfigMap is r1's again.
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.PublishedRevision = "shop-r2"
		metav1.SetMetaDataAnnotation(&a.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, "shop-r2")
	})
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, cd)).To(Succeed())
		g.Expect(cd.Spec.Template.Labels).To(HaveKeyWithValue(cafev1alpha1.AppRevisionLabel, "shop-r2"))
		g.Expect(cd.Annotations).To(HaveKeyWithValue(cafev1alpha1.FastReleaseAnnotation, "shop-r2"),
			"the fast-release request names the app revision the template renders")
	}).Should(Succeed())
	// The revisions' outcomes are written after the CafeDeployment, in the
	// same reconcile or the next.
	waitForOutcome(ctx, g, ns, "shop-r3", cafev1alpha1.ReleaseOutcomeRolledBack)
	r2 := waitForOutcome(ctx, g, ns, "shop-r2", cafev1alpha1.ReleaseOutcomeSucceeded)
	g.Expect(r2.Status.Message).To(ContainSubstring("pods run shop-r2"))
	done := &cafev1alpha1.CafeDeployment{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, done)).To(Succeed())
	g.Expect(done.Status.Release.TotalGroups).To(HaveValue(Equal(int32(1))), "a fast release is one group")
	for _, p := range listPods(ctx, g, ns) {
		g.Expect(p.Spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name).To(Equal("shop-r1-config"))
		g.Expect(p.Spec.Containers[0].Image).To(Equal("example.com/shop:v2"))
	}

	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, svc)).To(Succeed())
	g.Expect(svc.Spec.ClusterIP).To(Equal(clusterIP), "releases never change the Service")
}

func podIdentities(pods []corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, p := range pods {
		out[p.Name] = string(p.UID)
	}
	return out
}

// Garbage collection keeps revisionHistoryLimit revisions and never
// deletes the published, the last successful, the latest or a held
// revision, however old.
func TestGarbageCollectionKeepsPublishedLastSuccessfulLatestAndHeld(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "gc", "example.com/gc:v1")
	app.Spec.RevisionHistoryLimit = ptr.To[int32](2)
	app.Spec.Workload.Replicas = ptr.To[int32](0)
	app.Spec.Workload.Strategy.MinAvailable = nil
	createApp(ctx, t, g, app)
	waitForLatest(ctx, g, app)

	// r1 is published and succeeds (no pods: nothing to wait for).
	publish(ctx, g, app, "gc-r1")
	waitForOutcome(ctx, g, ns, "gc-r1", cafev1alpha1.ReleaseOutcomeSucceeded)
	// r2 is held, as an open release order would hold it.
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Template.Spec.Containers[0].Image = "example.com/gc:v2" })
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("gc-r2"))
	r2 := getRevision(ctx, g, ns, "gc-r2")
	patch := client.MergeFrom(r2.DeepCopy())
	metav1.SetMetaDataAnnotation(&r2.ObjectMeta, cafev1alpha1.HoldAnnotationPrefix+"releaseorder-weekly", "open")
	g.Expect(suite.Client.Patch(ctx, r2, patch)).To(Succeed())

	for i := 3; i <= 6; i++ {
		updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Template.Spec.Containers[0].Image = "example.com/gc:v" + string(rune('0'+i))
		})
		g.Expect(waitForLatest(ctx, g, app).Name).To(Equal(cafev1alpha1.AppRevisionName("gc", int64(i))))
	}
	// r1 (published, last successful), r2 (held) and r6 (latest) stay;
	// r3..r5 go, even though 3 revisions exceed the limit of 2.
	g.Eventually(func(g Gomega) {
		g.Expect(revisionNames(ctx, g, ns)).To(Equal([]string{"gc-r1", "gc-r2", "gc-r6"}))
	}).Should(Succeed())

	// Releasing the hold lets r2 go; the numbers keep increasing.
	r2 = getRevision(ctx, g, ns, "gc-r2")
	patch = client.MergeFrom(r2.DeepCopy())
	delete(r2.Annotations, cafev1alpha1.HoldAnnotationPrefix+"releaseorder-weekly")
	g.Expect(suite.Client.Patch(ctx, r2, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(revisionNames(ctx, g, ns)).To(Equal([]string{"gc-r1", "gc-r6"}))
	}).Should(Succeed())
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Template.Spec.Containers[0].Image = "example.com/gc:v3" })
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("gc-r7"), "a collected revision's content gets a new number")
}

// Should a publish of a revision that does not exist or is another app's
// get past the admission webhook (not running here), the controller
// releases nothing and says why.
func TestPublishingAForeignOrMissingRevisionReleasesNothing(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	other := newApp(ns, "other", "example.com/other:v1")
	createApp(ctx, t, g, other)
	waitForLatest(ctx, g, other)
	app := newApp(ns, "mine", "example.com/mine:v1")
	createApp(ctx, t, g, app)
	waitForLatest(ctx, g, app)

	for _, rev := range []string{"mine-r9", "other-r1"} {
		publish(ctx, g, app, rev)
		g.Eventually(func(g Gomega) {
			a := getApp(ctx, g, app)
			ready := meta.FindStatusCondition(a.Status.Conditions, cafev1alpha1.AppReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.ObservedGeneration).To(Equal(a.Generation))
			g.Expect(ready.Reason).To(Equal(cafev1alpha1.AppInvalidPublishReason))
			g.Expect(ready.Message).To(ContainSubstring(rev))
		}).Should(Succeed())
	}
	g.Consistently(func() bool {
		return apierrors.IsNotFound(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mine"}, &cafev1alpha1.CafeDeployment{}))
	}).WithTimeout(500 * time.Millisecond).Should(BeTrue())
}

// spec.service.publishInRegistry labels the app's Service for CAFE's
// registrar; a revision without it takes the label off again.
func TestPublishInRegistryLabelsTheService(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "api", "example.com/api:v1")
	app.Spec.Service.PublishInRegistry = true
	createApp(ctx, t, g, app)
	waitForLatest(ctx, g, app)
	labels := func(g Gomega) map[string]string {
		svc := &corev1.Service{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, svc)).To(Succeed())
		return svc.Labels
	}
	g.Eventually(labels).Should(HaveKeyWithValue(cafev1alpha1.RegistryPublishLabel, "true"))

	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Service.PublishInRegistry = false })
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("api-r2"))
	publish(ctx, g, app, "api-r2")
	g.Eventually(labels).ShouldNot(HaveKey(cafev1alpha1.RegistryPublishLabel))
}

// spec.workload.endpoints CAFE: the app's Service selects nothing and the
// CafeDeployment names it in spec.endpoints, so the app's InPlaceSets write
// its EndpointSlices; a release keeps both so.
func TestEndpointsWrittenByCAFELeaveTheServiceWithoutASelector(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "ledger", "example.com/ledger:v1")
	app.Spec.Workload.Endpoints = cafev1alpha1.AppEndpointsCAFE
	createApp(ctx, t, g, app)
	waitForLatest(ctx, g, app)
	svc := &corev1.Service{}
	g.Eventually(func() error { return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ledger"}, svc) }).Should(Succeed())
	g.Expect(svc.Spec.Selector).To(BeEmpty())
	g.Expect(svc.Spec.Ports).To(HaveLen(1))

	publish(ctx, g, app, "ledger-r1")
	cd := &cafev1alpha1.CafeDeployment{}
	g.Eventually(func() error { return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ledger"}, cd) }).Should(Succeed())
	g.Expect(cd.Spec.Endpoints).To(Equal(&cafev1alpha1.PodSetEndpoints{Service: "ledger"}))
	waitForOutcome(ctx, g, ns, "ledger-r1", cafev1alpha1.ReleaseOutcomeSucceeded)

	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Image = "example.com/ledger:v2"
	})
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("ledger-r2"))
	publish(ctx, g, app, "ledger-r2")
	waitForOutcome(ctx, g, ns, "ledger-r2", cafev1alpha1.ReleaseOutcomeSucceeded)
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ledger"}, cd)).To(Succeed())
	g.Expect(cd.Spec.Endpoints).To(Equal(&cafev1alpha1.PodSetEndpoints{Service: "ledger"}))
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ledger"}, svc)).To(Succeed())
	g.Expect(svc.Spec.Selector).To(BeEmpty())
}
