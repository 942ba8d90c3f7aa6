package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
)

// The "rollback wedged by a resources change": an app at r2 (no
// resources) is ordered to r3 (requests.cpu 64, so its pods stay Pending)
// with failurePolicy RollbackAll. The order fails r3 and rolls back, and
// the rollback must complete: the app returns to r2 on 3 of 3 available
// pods. Server-side apply of r2's template over r3's made the InPlaceSets
// unwritable ("resources: Invalid value: null"), and the order sat in
// RollingBack for good.
func TestSecurityRollbackAfterResourcesChange(t *testing.T) {
	runsBesideOthers(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, k8sClient)
	app := orderApp(ctx, g, ns, "pay", nil)
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = "pay-r2" })).To(Succeed())
	releasedRevision(ctx, g, app, "pay-r2")
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")}
	})).To(Succeed())
	waitForApp(ctx, g, app, latestIs("pay-r3"))

	alice, _ := releaseUser(t, ctx, ns, "alice", "requester")
	bob, _ := releaseUser(t, ctx, ns, "bob", "approver")
	oscar, _ := releaseUser(t, ctx, ns, "oscar", "operator")
	out, err := cafeCLI(ctx, t, ns, alice, "release", "create", "cpu", "--title", "more cpu", "--app", "pay=r3",
		"--approvals", "1", "--failure-policy", "RollbackAll", "--progress-deadline", "20s")
	g.Expect(err).NotTo(HaveOccurred(), out)
	out, err = cafeCLI(ctx, t, ns, bob, "release", "approve", "cpu")
	g.Expect(err).NotTo(HaveOccurred(), out)
	out, err = cafeCLI(ctx, t, ns, oscar, "release", "start", "cpu")
	g.Expect(err).NotTo(HaveOccurred(), out)

	rollingBack := waitForOrder(ctx, g, ns, "cpu", func(o *cafev1alpha1.ReleaseOrder) bool {
		s := o.Status.AppStatus("pay")
		return s != nil && s.RollbackStartedAt != nil || o.Status.Phase.IsFinished()
	})
	g.Expect(rollingBack.Status.Phase).To(Equal(cafev1alpha1.OrderRollingBack), "r3 never becomes available: the order fails it")
	final := waitForOrder(ctx, g, ns, "cpu", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack), "%s: %+v", final.Status.Message, final.Status.Apps)

	releasedRevision(ctx, g, app, "pay-r2")
	cd, err := framework.WaitForObject(ctx, k8sClient, &cafev1alpha1.CafeDeploymentList{}, ns, "pay", func(cd *cafev1alpha1.CafeDeployment) bool {
		return cd.Status.ObservedGeneration == cd.Generation && cd.Status.AvailableReplicas != nil && *cd.Status.AvailableReplicas == 3 &&
			cd.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted
	})
	g.Expect(err).NotTo(HaveOccurred(), "CafeDeployment pay: %+v", cd)
	g.Expect(cd.Spec.Template.Spec.Containers[0].Resources).To(Equal(corev1.ResourceRequirements{}))
	pods := listPods(ctx, g, ns, map[string]string{cafev1alpha1.AppLabel: "pay"})
	g.Expect(pods).To(HaveLen(3))
	for _, p := range pods {
		g.Expect(p.Spec.Containers[0].Image).To(Equal("example.com/pay:v2"), p.Name)
		g.Expect(p.Spec.Containers[0].Resources.Requests).To(BeEmpty(), p.Name)
		g.Expect(p.Labels).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, cd.Status.UpdateRevision), p.Name)
		g.Expect(framework.Serving(p)).To(BeTrue(), "%s serves", p.Name)
	}
	sets := &cafev1alpha1.InPlaceSetList{}
	g.Expect(k8sClient.List(ctx, sets, client.InNamespace(ns), client.MatchingLabels{cafev1alpha1.DeploymentLabel: "pay"})).To(Succeed())
	g.Expect(sets.Items).To(HaveLen(3))
	for _, s := range sets.Items {
		g.Expect(s.Spec.Template.Spec.Containers[0].Resources).To(Equal(corev1.ResourceRequirements{}), s.Name)
	}
}
