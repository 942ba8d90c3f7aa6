package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// appReleaser returns a client authenticated as user, who may read apps and
// their revisions and publish (patch) apps in ns — what an app release
// manager's role grants — and the kubeconfig it was built from.
func appReleaser(t *testing.T, ctx context.Context, ns, user string) (client.Client, string) {
	t.Helper()
	return userWithRole(t, ctx, user, "app-releasers", &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-releaser"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"cafe.io"}, Resources: []string{"cafeappservices"}, Verbs: []string{"get", "list", "watch", "patch", "update"}},
			{APIGroups: []string{"cafe.io"}, Resources: []string{"apprevisions"}, Verbs: []string{"get", "list", "watch", "delete"}},
			{APIGroups: []string{"cafe.io"}, Resources: []string{"cafedeployments"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get"}},
		},
	})
}

// waitForApp waits until the app's status, computed from its current
// generation, satisfies cond.
func waitForApp(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, cond func(*cafev1alpha1.CafeAppService) bool) *cafev1alpha1.CafeAppService {
	seen, err := framework.WaitForObject(ctx, k8sClient, &cafev1alpha1.CafeAppServiceList{}, app.Namespace, app.Name, func(a *cafev1alpha1.CafeAppService) bool {
		return a.Status.ObservedGeneration == a.Generation && cond(a)
	})
	var status any
	if seen != nil {
		status = seen.Status
	}
	g.Expect(err).NotTo(HaveOccurred(), "CafeAppService %s: last status %+v", app.Name, status)
	return seen
}

// editApp updates app from a fresh read each time, so that a refused edit
// leaves nothing behind for the next one.
func editApp(ctx context.Context, app *cafev1alpha1.CafeAppService, mutate func(*cafev1alpha1.CafeAppService)) error {
	fresh := &cafev1alpha1.CafeAppService{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: app.Name}}
	return update(ctx, fresh, func(a *cafev1alpha1.CafeAppService) {
		*a = cafev1alpha1.CafeAppService{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(app), a); err == nil {
			mutate(a)
		}
	})
}

func latestIs(rev string) func(*cafev1alpha1.CafeAppService) bool {
	return func(a *cafev1alpha1.CafeAppService) bool { return a.Status.LatestRevision == rev }
}

// releasedRevision waits until rev runs on every pod: its outcome is
// Succeeded and the app is Ready.
func releasedRevision(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, rev string) *cafev1alpha1.AppRevision {
	waitForApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) bool {
		for _, r := range a.Status.Revisions {
			if r.Name == rev {
				return r.Outcome == cafev1alpha1.ReleaseOutcomeSucceeded && a.Status.PublishedRevision == rev && a.Status.LastSuccessfulRevision == rev
			}
		}
		return false
	})
	out := &cafev1alpha1.AppRevision{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: rev}, out)).To(Succeed())
	return out
}

// publishedApp creates an app of replicas pods over three zones (pods of
// appTemplate, grace period 1s, service port 80) released with strategy,
// publishes r1 as the admin and waits until it runs on every pod.
func publishedApp(ctx context.Context, g Gomega, ns, name string, replicas int32, strategy cafev1alpha1.CafeDeploymentStrategy) *cafev1alpha1.CafeAppService {
	template := appTemplate(map[string]string{"tier": name})
	template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: template,
			Service:  cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80}}},
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To(replicas),
				Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
				Strategy: strategy,
			},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	waitForApp(ctx, g, app, latestIs(name+"-r1"))
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = name + "-r1" })).To(Succeed())
	releasedRevision(ctx, g, app, name+"-r1")
	return app
}

// recordR2 changes app's image to image and waits until the app records
// the change as r2 (not published).
func recordR2(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, image string) {
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Image = image
	})).To(Succeed())
	waitForApp(ctx, g, app, latestIs(app.Name+"-r2"))
}

// configOf returns, for each pod, the ConfigMap its GREETING comes from
// and that ConfigMap's GREETING: what the pod reads.
func greetingsOf(ctx context.Context, g Gomega, pods []*corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, p := range pods {
		var cm string
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == "GREETING" && e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				cm = e.ValueFrom.ConfigMapKeyRef.Name
			}
		}
		g.Expect(cm).NotTo(BeEmpty(), "pod %s reads no GREETING from a ConfigMap", p.Name)
		data := &corev1.ConfigMap{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: cm}, data)).To(Succeed())
		out[p.Name] = cm + ":" + data.Data["GREETING"]
	}
	return out
}

func expectLosslessAboveWaterLevel(ctx context.Context, g Gomega, rec *watchrec.Recorder, podLabels map[string]string, minReady int) {
	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), minReady))).To(BeEmpty())
}

// Issue 4's scenario: an app; an image edit (r2) and a config edit (r3);
// r2 then r3 published by a release manager through the CLI, each release
// lossless and above the water level; `cafe app rollback` to r2 restores
// the image and the config contents; the Service's ClusterIP never
// changes; an edit back to r2's content re-uses r2. Bad input is refused
// by CAFE's webhooks.
func TestAppPublishRollbackRestoresImageAndConfig(t *testing.T) {
	g := NewWithT(t)
	// Three releases, two of which replace every pod: more than the
	// package's usual bound.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{cafev1alpha1.AppLabel: "store"}
	template := appTemplate(map[string]string{"tier": "web"})
	// A drained pod has nothing left to finish.
	template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store"},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: template,
			Service:  cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80}}},
			Config: cafev1alpha1.AppConfig{
				Env:   map[string]string{"GREETING": "hello"},
				Files: map[string]string{"store.yaml": "limit: 10\n"},
			},
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To[int32](6),
				Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
				Strategy: cafev1alpha1.CafeDeploymentStrategy{
					UpgradeType:  cafev1alpha1.UpgradeTypeBatch,
					BatchSize:    ptr.To(intstr.FromInt32(2)),
					MinAvailable: ptr.To(intstr.FromInt32(5)),
				},
			},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	waitForApp(ctx, g, app, latestIs("store-r1"))
	svc := &corev1.Service{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store"}, svc)).To(Succeed())
	clusterIP := svc.Spec.ClusterIP
	g.Expect(clusterIP).NotTo(BeEmpty())
	alice, aliceKubeconfig := appReleaser(t, ctx, ns, "alice")
	cafe := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, cafeBinary(t), append(append([]string{"app"}, args...), "-n", ns, "--kubeconfig", aliceKubeconfig)...).CombinedOutput()
		return string(out), err
	}

	// Bad input, refused by the webhooks with the field named.
	err := editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = "store-r7" })
	g.Expect(err).To(MatchError(ContainSubstring("spec.publishedRevision: AppRevision " + ns + "/store-r7 does not exist")))
	err = editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GREETING", Value: "hi"}}
	})
	g.Expect(err).To(MatchError(ContainSubstring("spec.config.env[GREETING]")))

	// r1, the first pods.
	out, err := cafe("publish", "store", "--revision", "r1")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("recorded as published by alice"))
	r1 := releasedRevision(ctx, g, app, "store-r1")
	g.Expect(r1.Status.PublishedBy).To(Equal("alice"))
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1"))
	g.Expect(waitForReadyEndpoints(ctx, ns, "store", 6)).To(Succeed())

	// A client cannot claim someone else published.
	current := &cafev1alpha1.CafeAppService{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(app), current)).To(Succeed())
	forged := current.DeepCopy()
	forged.Annotations[cafev1alpha1.PublishedByAnnotation] = "bob"
	g.Expect(alice.Patch(ctx, forged, client.MergeFrom(current))).To(MatchError(ContainSubstring(cafev1alpha1.PublishedByAnnotation)))
	// Nor delete the revision the pods run.
	err = alice.Delete(ctx, r1)
	g.Expect(err).To(MatchError(ContainSubstring("store-r1 is published")))

	// r2: the image; r3: a config value. Neither is released by the edit.
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	waitForApp(ctx, g, app, latestIs("store-r2"))
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Env["GREETING"] = "bonjour" })).To(Succeed())
	waitForApp(ctx, g, app, latestIs("store-r3"))
	g.Expect(identities(waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1"))).To(Equal(before), "editing is not releasing")

	// Publish r2: image only, so the pods are updated in place.
	rec := framework.Record(ctx, t, g, env.Admin, ns)
	out, err = cafe("publish", "store", "--revision", "store-r2")
	g.Expect(err).NotTo(HaveOccurred(), out)
	releasedRevision(ctx, g, app, "store-r2")
	pods := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	g.Expect(identities(pods)).To(Equal(before), "an image-only revision keeps every pod's name, UID, node and IP")
	for p, greeting := range greetingsOf(ctx, g, pods) {
		g.Expect(greeting).To(Equal("store-r1-config:hello"), p)
	}
	expectLosslessAboveWaterLevel(ctx, g, rec, podLabels, 5)
	rec.Stop()

	// Publish r3: the config changes, so the pods are replaced, group by
	// group like any release.
	rec = framework.Record(ctx, t, g, env.Admin, ns)
	out, err = cafe("publish", "store", "--revision", "3")
	g.Expect(err).NotTo(HaveOccurred(), out)
	releasedRevision(ctx, g, app, "store-r3")
	pods = waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	for p, greeting := range greetingsOf(ctx, g, pods) {
		g.Expect(greeting).To(Equal("store-r3-config:bonjour"), p)
	}
	expectLosslessAboveWaterLevel(ctx, g, rec, podLabels, 5)
	rec.Stop()

	// Roll back: the last successful revision before r3 is r2, with its
	// image and its config contents.
	rec = framework.Record(ctx, t, g, env.Admin, ns)
	out, err = cafe("rollback", "store", "--fast")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("published store-r2 of store (was store-r3)"))
	r2 := releasedRevision(ctx, g, app, "store-r2")
	g.Expect(r2.Status.PublishedBy).To(Equal("alice"))
	g.Expect(r2.Status.Message).To(ContainSubstring("pods run store-r2"))
	pods = waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	for p, greeting := range greetingsOf(ctx, g, pods) {
		g.Expect(greeting).To(Equal("store-r1-config:hello"), p)
	}
	r3 := &cafev1alpha1.AppRevision{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store-r3"}, r3)).To(Succeed())
	g.Expect(r3.Status.Outcome).To(Equal(cafev1alpha1.ReleaseOutcomeRolledBack))
	g.Expect(r3.Status.LastSucceededAt).NotTo(BeNil(), "r3 did succeed once")
	expectLosslessAboveWaterLevel(ctx, g, rec, podLabels, 5)

	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store"}, svc)).To(Succeed())
	g.Expect(svc.Spec.ClusterIP).To(Equal(clusterIP), "releases never change the Service's address")
	g.Expect(waitForReadyEndpoints(ctx, ns, "store", 6)).To(Succeed())

	// Editing back to r2's content re-uses r2.
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Env["GREETING"] = "hello" })).To(Succeed())
	waitForApp(ctx, g, app, latestIs("store-r2"))
	revs := &cafev1alpha1.AppRevisionList{}
	g.Expect(k8sClient.List(ctx, revs, client.InNamespace(ns))).To(Succeed())
	g.Expect(revs.Items).To(HaveLen(3), "no r4 for a content r2 holds")

	out, err = cafe("revisions", "store")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(MatchRegexp(`store-r2 .*Succeeded\s+alice\s+latest,published,last-successful`))
	g.Expect(out).To(MatchRegexp(`store-r3 .*RolledBack\s+alice`))
}

// Issue 14: an app whose Service's endpoints CAFE writes
// (spec.workload.endpoints CAFE): the Service has no selector, the app's
// CafeDeployment names it in spec.endpoints, and CAFE's slices alone list
// the pods. `cafe app rollback --fast` then drains each pod by taking it
// out of the slices (no gate closes), in place, lossless, with more pods
// out at once than a group of the grouped release (3) and never fewer than
// minAvailable (50%) listed ready (watch-checked; without --fast the
// rollback keeps to its groups and the first check fails).
func TestAppWithEndpointsWrittenByCAFERollsBackFastWithinTheWaterLevel(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 5*time.Minute)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{cafev1alpha1.AppLabel: "ledger"}
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ledger"},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: appTemplate(map[string]string{"tier": "web"}),
			Service:  cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80}}},
			Workload: cafev1alpha1.AppWorkload{
				Replicas:  ptr.To[int32](12),
				Topology:  cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
				Endpoints: cafev1alpha1.AppEndpointsCAFE,
				Strategy: cafev1alpha1.CafeDeploymentStrategy{
					UpgradeType:  cafev1alpha1.UpgradeTypeBatch,
					BatchSize:    ptr.To(intstr.FromInt32(3)),
					MinAvailable: ptr.To(intstr.FromString("50%")),
				},
			},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	waitForApp(ctx, g, app, latestIs("ledger-r1"))
	svc := &corev1.Service{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ledger"}, svc)).To(Succeed())
	g.Expect(svc.Spec.Selector).To(BeEmpty(), "CAFE writes the endpoints: the Service selects nothing")

	publishApp := func(rev string) {
		g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = rev })).To(Succeed())
		releasedRevision(ctx, g, app, rev)
	}
	publishApp("ledger-r1")
	cd := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ledger"}, cd)).To(Succeed())
	g.Expect(cd.Spec.Endpoints).To(Equal(&cafev1alpha1.PodSetEndpoints{Service: "ledger"}))
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1"))
	published := map[string]int{cafev1alpha1.EndpointSliceManagedByInPlaceSet: 12}
	g.Eventually(func(g Gomega) {
		g.Expect(serviceSlices(ctx, g, ns, "ledger")).To(Equal(published))
	}).Should(Succeed(), "CAFE's slices, and only those, list every pod ready")

	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	waitForApp(ctx, g, app, latestIs("ledger-r2"))
	publishApp("ledger-r2")
	waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v2")

	rec := framework.Record(ctx, t, g, env.Admin, ns)
	out, err := cafeCLI(ctx, t, ns, env.ControlPlane.KubeconfigPath(), "app", "rollback", "ledger", "--fast")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("published ledger-r1 of ledger (was ledger-r2)"))
	out, err = cafeCLI(ctx, t, ns, env.ControlPlane.KubeconfigPath(), "app", "get", "ledger")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("Endpoints:        written by CAFE"))
	releasedRevision(ctx, g, app, "ledger-r1")
	after := identities(waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1"))
	g.Expect(after).To(Equal(before), "every pod rolled back in place: same UID, node and IP")
	g.Eventually(func(g Gomega) {
		g.Expect(serviceSlices(ctx, g, ns, "ledger")).To(Equal(published))
	}).Should(Succeed())

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckServingLevel(events, 6))).To(BeEmpty(), "never fewer than minAvailable listed ready")
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), 6))).To(BeEmpty())
	g.Expect(watchrec.CheckServingLevel(events, 9)).NotTo(BeEmpty(),
		"more than a group of 3 out of the slices at once: the water level alone bounds a fast rollback")
	for _, ev := range events {
		if ev.Pod != nil {
			g.Expect(lossless.DrainReason(ev.Pod)).To(BeEmpty(), "pod %s's gate closed (resourceVersion %d)", ev.Pod.Name, ev.ResourceVersion)
		}
	}
}
