package cafedeployment_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
)

func TestACafeDeploymentRunsOneInPlaceSetPerUnit(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd := newCafeDeployment(ns, "shop", "app:v1")
	createDeployment(ctx, t, g, cd)
	stored := getDeployment(ctx, g, cd)

	for _, zone := range zones {
		var s *cafev1alpha1.InPlaceSet
		g.Eventually(func(g Gomega) { s = podSet(ctx, g, cd, zone) }).Should(Succeed())
		g.Expect(s.Name).To(Equal("shop-" + zone))
		g.Expect(s.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)), zone)
		g.Expect(s.Spec.Unit).To(HaveValue(Equal(cafev1alpha1.PodSetUnit{Key: corev1.LabelTopologyZone, Value: zone})))
		g.Expect(s.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "shop", cafev1alpha1.UnitLabel: zone}))
		g.Expect(s.Labels).To(HaveKeyWithValue(cafev1alpha1.DeploymentLabel, "shop"))
		g.Expect(s.Spec.Template.Spec.Containers[0].Image).To(Equal("app:v1"))
		owner := metav1.GetControllerOf(s)
		g.Expect(owner).NotTo(BeNil(), zone)
		g.Expect(owner.Kind).To(Equal("CafeDeployment"))
		g.Expect(owner.Name).To(Equal("shop"))
		g.Expect(owner.UID).To(Equal(stored.UID))
	}

	g.Eventually(func(g Gomega) {
		byUnit := podsByUnit(ctx, g, ns)
		for _, zone := range zones {
			var names []string
			for _, p := range byUnit[zone] {
				names = append(names, p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue("app", "shop"))
			}
			g.Expect(names).To(Equal([]string{"shop-" + zone + "-0", "shop-" + zone + "-1"}))
		}
	}).Should(Succeed())

	g.Eventually(func(g Gomega) {
		st := getDeployment(ctx, g, cd).Status
		g.Expect(st.Units).To(HaveLen(3))
		for i, zone := range zones {
			g.Expect(st.Units[i].Name).To(Equal(zone))
			g.Expect(st.Units[i].DesiredReplicas).To(HaveValue(BeEquivalentTo(2)), zone)
			g.Expect(st.Units[i].Replicas).To(HaveValue(BeEquivalentTo(2)), zone)
		}
		g.Expect(st.Replicas).To(HaveValue(BeEquivalentTo(6)))
		g.Expect(st.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted), "creating the first pods is no release to confirm")
	}).Should(Succeed())
}

func TestABetaReleaseUpdatesOnePodPerUnitThenWaitsForAConfirmation(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd := newCafeDeployment(ns, "shop", "app:v1")
	createDeployment(ctx, t, g, cd)
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		st := getDeployment(ctx, g, cd).Status
		g.Expect(st.AvailableReplicas).To(HaveValue(BeEquivalentTo(6)))
		g.Expect(st.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
	}).Should(Succeed())
	rec := suite.Record(ctx, t, g, ns)

	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) { cd.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	g.Eventually(func(g Gomega) {
		for _, zone := range zones {
			s := podSet(ctx, g, cd, zone)
			g.Expect(s.Spec.Template.Spec.Containers[0].Image).To(Equal("app:v2"), zone)
			g.Expect(s.Spec.UpdateStrategy.Partition).To(HaveValue(BeEquivalentTo(1)), "the beta group takes one pod of %s", zone)
		}
		rel := getDeployment(ctx, g, cd).Status.Release
		g.Expect(rel.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing))
		g.Expect(rel.CurrentGroup).To(HaveValue(BeEquivalentTo(0)))
		g.Expect(rel.TotalGroups).To(HaveValue(BeEquivalentTo(3)), "beta, then 3 pods in groups of 2")
	}).Should(Succeed())

	// The pods of the beta group are updated in place, but until the kubelet
	// reports the new image they do not serve: the group is not done.
	g.Consistently(func(g Gomega) {
		g.Expect(getDeployment(ctx, g, cd).Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing))
		for zone, pods := range podsByUnit(ctx, g, ns) {
			onV2 := 0
			for _, p := range pods {
				if p.Spec.Containers[0].Image == "app:v2" {
					onV2++
				}
			}
			g.Expect(onV2).To(BeNumerically("<=", 1), zone)
		}
	}).Should(Succeed())

	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		rel := getDeployment(ctx, g, cd).Status.Release
		g.Expect(rel.Phase).To(Equal(cafev1alpha1.ReleasePhaseWaitingForConfirm))
		g.Expect(rel.CurrentGroup).To(HaveValue(BeEquivalentTo(0)))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseWaitingForConfirm))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, cafev1alpha1.CafeDeploymentWaitingForConfirmCondition)).To(BeTrue())
		byUnit := podsByUnit(ctx, g, ns)
		for _, zone := range zones {
			var images []string
			for _, p := range byUnit[zone] {
				images = append(images, p.Spec.Containers[0].Image)
				g.Expect(framework.Serving(&p)).To(BeTrue(), "%s serves", p.Name)
			}
			g.Expect(images).To(ConsistOf("app:v1", "app:v2"), "exactly one pod of %s is released before the confirmation", zone)
		}
	}).Should(Succeed())

	confirm(ctx, g, cd, 0, "alice")
	g.Eventually(func(g Gomega) {
		got := getDeployment(ctx, g, cd)
		rel := got.Status.Release
		g.Expect(rel.CurrentGroup).To(HaveValue(BeEquivalentTo(1)))
		g.Expect(rel.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing))
		g.Expect(rel.Groups).NotTo(BeEmpty())
		g.Expect(rel.Groups[0].Index).To(BeEquivalentTo(0))
		g.Expect(rel.Groups[0].ConfirmedBy).To(Equal("alice"))
		g.Expect(rel.Groups[0].ConfirmedAt).NotTo(BeNil())
		g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, cafev1alpha1.CafeDeploymentWaitingForConfirmCondition)).To(BeTrue())
		var partitions int32
		for _, zone := range zones {
			partitions += ptr.Deref(podSet(ctx, g, cd, zone).Spec.UpdateStrategy.Partition, 0)
		}
		g.Expect(partitions).To(BeEquivalentTo(1), "group 1 releases 2 of the 3 pods left")
	}).Should(Succeed())

	framework.ExpectLossless(ctx, g, rec)
}
