package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// serviceSlices counts the endpoints the Service's EndpointSlices list
// ready, by who manages the slices.
func serviceSlices(ctx context.Context, g Gomega, ns, svc string) map[string]int {
	list := &discoveryv1.EndpointSliceList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc})).To(Succeed())
	ready := map[string]int{}
	for _, s := range list.Items {
		manager := s.Labels[discoveryv1.LabelManagedBy]
		ready[manager] += 0 // a slice listing nobody ready still shows who manages it
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				ready[manager]++
			}
		}
	}
	return ready
}

// Issue 14: with spec.endpoints, CAFE writes the Service's EndpointSlices
// and an in-place release drains each pod by dropping it from them: no
// gate closes, the pods the slices list ready never fall below
// minAvailable, and no pod is patched while listed (watch-checked), with
// kube-controller-manager's EndpointSlice controller running beside it.
func TestCafeDeploymentWithOwnedEndpointsReleasesWithoutClosingAGate(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "owned"}
	g.Expect(k8sClient.Create(ctx, service(ns, "owned", nil))).To(Succeed())
	cd := cafeDeployment(ns, "owned", 12, podLabels)
	cd.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: "owned"}
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:     cafev1alpha1.UpgradeTypeBatch,
		BatchSize:       ptr.To(intstr.FromInt32(4)),
		MinReadySeconds: 1,
		MinAvailable:    ptr.To(intstr.FromInt32(8)),
	}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1"))
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))
	published := map[string]int{cafev1alpha1.EndpointSliceManagedByInPlaceSet: 12}
	g.Eventually(func(g Gomega) {
		g.Expect(serviceSlices(ctx, g, ns, "owned")).To(Equal(published))
	}).Should(Succeed(), "CAFE's slices, and only those, list every pod ready")

	rec := framework.Record(ctx, t, g, env.Admin, ns)
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))
	after := identities(waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v2"))
	g.Eventually(func(g Gomega) {
		g.Expect(serviceSlices(ctx, g, ns, "owned")).To(Equal(published))
	}).Should(Succeed())
	g.Expect(after).To(Equal(before), "every pod updated in place: same UID, node and IP")

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckServingLevel(events, 8))).To(BeEmpty())
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), 8))).To(BeEmpty())
	for _, ev := range events {
		if ev.Pod != nil {
			g.Expect(lossless.DrainReason(ev.Pod)).To(BeEmpty(), "pod %s's gate closed (resourceVersion %d)", ev.Pod.Name, ev.ResourceVersion)
		}
	}
	for name := range before {
		g.Expect(watchrec.CountPodSpecChanges(events, name)).To(Equal(1), "one in-place patch of %s", name)
	}
}
