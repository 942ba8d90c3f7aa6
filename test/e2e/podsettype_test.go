package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// releaseGroupByGroup changes the image to v2 and walks a confirm-gated
// release through every group, checking at each stop that the pods on v2
// per zone are exactly what the release record's groups add up to. It
// returns the completed CafeDeployment.
func releaseGroupByGroup(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, podLabels map[string]string, wantAfterGroup []map[string]int) *cafev1alpha1.CafeDeployment {
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	for group, want := range wantAfterGroup {
		got := waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseWaitingForConfirm, int32(group)))
		pods := listPods(ctx, g, cd.Namespace, podLabels)
		g.Expect(updatedPodsPerZone(livePods(pods), "example.com/app:v2")).To(Equal(want), "pods on v2 per zone after group %d", group)
		confirm := got.DeepCopy()
		confirm.Annotations[cafev1alpha1.ConfirmGroupAnnotation] = strconv.Itoa(group)
		g.Expect(k8sClient.Patch(ctx, confirm, client.MergeFrom(got))).To(Succeed())
	}
	return waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		return c.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted && ptr.Deref(c.Status.UpdatedReplicas, 0) == ptr.Deref(c.Spec.Replicas, 0) &&
			ptr.Deref(c.Status.AvailableReplicas, 0) == ptr.Deref(c.Spec.Replicas, 0)
	})
}

func livePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// groupedStrategy: Beta (one pod per zone), then batches of 2, confirm
// after every group, never fewer than 5 of 6 pods available. Over three
// zones that is three groups: 1+1+1, then 1+1+0, then 0+0+1.
func groupedStrategy() cafev1alpha1.CafeDeploymentStrategy {
	return cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:           cafev1alpha1.UpgradeTypeBeta,
		BatchSize:             ptr.To(intstr.FromInt32(2)),
		NeedWaitingForConfirm: ptr.To(true),
		MinAvailable:          ptr.To(intstr.FromInt32(5)),
	}
}

func checkInvariants(ctx context.Context, g Gomega, rec *watchrec.Recorder, podLabels map[string]string, minAvailable int) {
	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), minAvailable))).To(BeEmpty())
}

// Issue scenario 3, ReplicaSet mode: native ReplicaSets per unit and
// revision; every replaced pod is drained and marked before its ReplicaSet
// shrinks; the release stops after each group.
func TestCafeDeploymentReplicaSetModeReleasesGroupByGroup(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "rs"}
	g.Expect(k8sClient.Create(ctx, service(ns, "rs", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "rs", 6, podLabels)
	cd.Spec.PodSetType = cafev1alpha1.PodSetTypeReplicaSet
	cd.Spec.Strategy = groupedStrategy()
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())

	waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1")
	first := waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))
	g.Expect(waitForReadyEndpoints(ctx, ns, "rs", 6)).To(Succeed())
	rec := framework.Record(ctx, t, g, env.Admin, ns)

	done := releaseGroupByGroup(ctx, g, cd, podLabels, []map[string]int{
		{"zone-a": 1, "zone-b": 1, "zone-c": 1},
		{"zone-a": 2, "zone-b": 2, "zone-c": 1},
	})
	pods := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	// `kubectl delete pod` drains first here too; the ReplicaSet replaces it.
	deleteDrainsFirst(ctx, g, rec, ns, podLabels, pods[0], 6)
	pods = waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	checkInvariants(ctx, g, rec, podLabels, 5)

	// One ReplicaSet per unit remains, the update revision's, owned by the
	// CafeDeployment and pinned to its unit; the old revision's are gone.
	sets := &appsv1.ReplicaSetList{}
	g.Expect(k8sClient.List(ctx, sets, client.InNamespace(ns))).To(Succeed())
	g.Expect(sets.Items).To(HaveLen(3))
	for _, rs := range sets.Items {
		unit := rs.Labels[cafev1alpha1.UnitLabel]
		g.Expect(rs.Name).To(Equal(fmt.Sprintf("rs-%s-%s", unit, done.Status.UpdateRevision)))
		g.Expect(metav1.IsControlledBy(&rs, done)).To(BeTrue())
		g.Expect(rs.Spec.Replicas).To(HaveValue(Equal(int32(2))))
		terms := rs.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		g.Expect(terms[0].MatchExpressions).To(ContainElement(corev1.NodeSelectorRequirement{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{unit}}))
	}
	for _, p := range pods {
		node := &corev1.Node{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: p.Spec.NodeName}, node)).To(Succeed())
		g.Expect(node.Labels[corev1.LabelTopologyZone]).To(Equal(p.Labels[cafev1alpha1.UnitLabel]), "pod %s runs in its unit", p.Name)
	}
	g.Expect(done.Status.UpdateRevision).NotTo(Equal(first.Status.UpdateRevision))
}

// Issue scenario 3, StatefulSet mode: one StatefulSet per unit with
// OnDelete; CAFE drains and deletes each pod, which comes back with the
// same name (ordinal) and the same claim.
func TestCafeDeploymentStatefulSetModeKeepsOrdinalsAndClaims(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "db"}
	g.Expect(k8sClient.Create(ctx, service(ns, "db", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "db", 6, podLabels)
	cd.Spec.PodSetType = cafev1alpha1.PodSetTypeStatefulSet
	cd.Spec.Strategy = groupedStrategy()
	cd.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	cd.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())

	before := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1")
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))
	var podNames, claimNames []string
	for _, zone := range []string{"zone-a", "zone-b", "zone-c"} {
		for i := range 2 {
			name := fmt.Sprintf("db-%s-%d", zone, i)
			podNames = append(podNames, name)
			claimNames = append(claimNames, "data-"+name)
		}
	}
	g.Expect(podNamesOf(before)).To(ConsistOf(podNames))
	claimsBefore := waitForBoundClaims(ctx, g, ns, claimNames...)
	g.Expect(waitForReadyEndpoints(ctx, ns, "db", 6)).To(Succeed())
	rec := framework.Record(ctx, t, g, env.Admin, ns)

	releaseGroupByGroup(ctx, g, cd, podLabels, []map[string]int{
		{"zone-a": 1, "zone-b": 1, "zone-c": 1},
		{"zone-a": 2, "zone-b": 2, "zone-c": 1},
	})
	after := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	// `kubectl delete pod` drains first; the StatefulSet recreates the
	// ordinal with its claim (checked below with the others).
	deleteDrainsFirst(ctx, g, rec, ns, podLabels, after[0], 6)
	after = waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	checkInvariants(ctx, g, rec, podLabels, 5)

	g.Expect(podNamesOf(after)).To(ConsistOf(podNames), "every ordinal keeps its name")
	beforeUIDs := map[string]types.UID{}
	for _, p := range before {
		beforeUIDs[p.Name] = p.UID
	}
	for _, p := range after {
		g.Expect(p.UID).NotTo(Equal(beforeUIDs[p.Name]), "pod %s was recreated, not updated in place", p.Name)
	}
	claimsAfter := waitForBoundClaims(ctx, g, ns, claimNames...)
	for name, c := range claimsBefore {
		g.Expect(claimsAfter[name].UID).To(Equal(c.UID), "claim %s is the same claim", name)
		g.Expect(claimsAfter[name].Spec.VolumeName).To(Equal(c.Spec.VolumeName), "claim %s keeps its volume", name)
	}
	for _, p := range after {
		g.Expect(p.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.PersistentVolumeClaim.ClaimName", "data-"+p.Name)))
	}
}

func podNamesOf(pods []*corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}
