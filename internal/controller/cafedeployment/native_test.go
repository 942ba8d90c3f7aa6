package cafedeployment_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
)

// No kube-controller-manager runs under envtest: these tests check the
// native pod sets CAFE writes and the gate keeper; test/e2e releases
// through them on a full control plane.

func zonePin(zone string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{zone}}
}

func TestReplicaSetModeRunsOneReplicaSetPerUnitAndRevision(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd := newCafeDeployment(ns, "shop", "app:v1")
	cd.Spec.PodSetType = cafev1alpha1.PodSetTypeReplicaSet
	cd.Spec.Strategy.MinReadySeconds = 5
	createDeployment(ctx, t, g, cd)

	var rev string
	g.Eventually(func(g Gomega) {
		rev = getDeployment(ctx, g, cd).Status.UpdateRevision
		g.Expect(rev).NotTo(BeEmpty())
	}).Should(Succeed())
	for _, zone := range zones {
		rs := &appsv1.ReplicaSet{}
		g.Eventually(func() error {
			return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-" + zone + "-" + rev}, rs)
		}).Should(Succeed(), zone)
		g.Expect(rs.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)), zone)
		g.Expect(rs.Spec.MinReadySeconds).To(BeEquivalentTo(5))
		g.Expect(rs.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "shop", cafev1alpha1.UnitLabel: zone, cafev1alpha1.RevisionHashLabel: rev}))
		g.Expect(metav1.GetControllerOf(rs).Kind).To(Equal("CafeDeployment"))
		tpl := rs.Spec.Template
		g.Expect(tpl.Labels).To(HaveKeyWithValue(cafev1alpha1.DeploymentLabel, "shop"))
		g.Expect(lossless.HasGate(&tpl.Spec)).To(BeTrue(), "pods carry the traffic-ready gate")
		g.Expect(tpl.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions).To(ContainElement(zonePin(zone)))
		g.Expect(tpl.Spec.TopologySpreadConstraints).To(ContainElement(HaveField("TopologyKey", "kubernetes.io/hostname")))
	}

	// A new revision gets new ReplicaSets; the old ones keep their pods
	// until the release drains them (no pod exists here, so none shrinks
	// below what it runs).
	updateDeployment(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) { c.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	g.Eventually(func(g Gomega) {
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.UpdateRevision).NotTo(Equal(rev))
		list := &appsv1.ReplicaSetList{}
		g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		names := map[string]bool{}
		for _, rs := range list.Items {
			names[rs.Name] = true
		}
		for _, zone := range zones {
			g.Expect(names).To(HaveKey("shop-" + zone + "-" + got.Status.UpdateRevision))
		}
	}).Should(Succeed())
}

func TestStatefulSetModeRunsOneOnDeleteStatefulSetPerUnit(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd := newCafeDeployment(ns, "db", "db:v1")
	cd.Spec.PodSetType = cafev1alpha1.PodSetTypeStatefulSet
	cd.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	createDeployment(ctx, t, g, cd)

	for _, zone := range zones {
		sts := &appsv1.StatefulSet{}
		g.Eventually(func() error {
			return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-" + zone}, sts)
		}).Should(Succeed(), zone)
		g.Expect(sts.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
		g.Expect(sts.Spec.UpdateStrategy.Type).To(Equal(appsv1.OnDeleteStatefulSetStrategyType), "CAFE chooses when each pod goes")
		g.Expect(sts.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
		g.Expect(sts.Spec.VolumeClaimTemplates).To(HaveLen(1))
		g.Expect(sts.Spec.VolumeClaimTemplates[0].Name).To(Equal("data"))
		g.Expect(lossless.HasGate(&sts.Spec.Template.Spec)).To(BeTrue())
		g.Expect(sts.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions).To(ContainElement(zonePin(zone)))
	}
}

// nativePod is a pod as a ReplicaSet would create it for a CafeDeployment,
// labelled like every pod CAFE creates (the manager caches no other)
// ("ghost": none exists, so only the gate keeper acts on it).
func nativePod(ns, name string, owner *appsv1.ReplicaSet) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels:          map[string]string{cafev1alpha1.DeploymentLabel: "ghost", cafev1alpha1.UnitLabel: "zone-a", cafev1alpha1.RevisionHashLabel: "v1"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "app", Image: "app:v1"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: cafev1alpha1.TrafficReadyCondition}},
		},
	}
}

func TestGateKeeperOpensNativePodsAfterMinReadySecondsAndLeavesDrainsAlone(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	labels := map[string]string{"app": "ghost"}
	// Labelled like a CafeDeployment's ReplicaSet: the manager caches no
	// other, and the gate keeper reads minReadySeconds from the cache.
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ghost-zone-a-1", Labels: map[string]string{cafev1alpha1.DeploymentLabel: "ghost", cafev1alpha1.UnitLabel: "zone-a"}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](0), MinReadySeconds: 2,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}}},
		},
	}
	g.Expect(suite.Client.Create(ctx, rs)).To(Succeed())
	fresh, draining := nativePod(ns, "fresh", rs), nativePod(ns, "draining", rs)
	for _, p := range []*corev1.Pod{fresh, draining} {
		g.Expect(suite.Client.Create(ctx, p)).To(Succeed())
	}
	g.Expect(lossless.SetGate(ctx, suite.Client, draining, corev1.ConditionFalse, lossless.ReasonDrainForDelete, "test drain")).To(Succeed())
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(draining), draining)).To(Succeed())
	suite.Kubelet.RunContainers(ctx, g, draining, time.Now())

	// Not before its containers are ready...
	g.Consistently(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(fresh), fresh)).To(Succeed())
		g.Expect(lossless.Gate(fresh)).To(BeNil())
	}).Should(Succeed())
	suite.Kubelet.RunContainers(ctx, g, fresh, time.Now())
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(fresh), fresh)).To(Succeed())
	readyAt := framework.PodCondition(fresh, corev1.ContainersReady).LastTransitionTime

	// ...and then only after the ReplicaSet's minReadySeconds.
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(fresh), fresh)).To(Succeed())
		g.Expect(lossless.GateOpen(fresh)).To(BeTrue())
	}).Should(Succeed())
	opened := lossless.Gate(fresh).LastTransitionTime
	g.Expect(opened.Sub(readyAt.Time)).To(BeNumerically(">=", time.Second), "opened %s after ready at %s: minReadySeconds is 2 (timestamps have 1 s resolution)", opened, readyAt)
	g.Expect(lossless.Gate(fresh).Reason).To(Equal(lossless.ReasonServing))

	// A gate closed for an operation is the operation's business.
	g.Consistently(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(draining), draining)).To(Succeed())
		g.Expect(lossless.DrainReason(draining)).To(Equal(lossless.ReasonDrainForDelete))
	}, 3*time.Second).Should(Succeed())
}
