package inplaceset_test

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/revision"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

const inPlaceStateAnnotation = "cafe.io/inplace-update-state"

func TestAnInPlaceSetCreatesGatedPodsNamedBySlotAndPinnedToItsUnit(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 3, "app:v1")
	set.Spec.Unit = &cafev1alpha1.PodSetUnit{Key: corev1.LabelTopologyZone, Value: "zone-a"}
	createSet(ctx, t, g, set)

	pods := waitForPods(ctx, g, set, "web-0", "web-1", "web-2")
	rev := observedRevision(ctx, g, set)
	stored := getSet(ctx, g, set)
	g.Expect(rev).To(Equal(revision.TemplateHash(&stored.Spec.Template)), "the update revision names the stored template")

	pin := corev1.NodeSelectorRequirement{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"zone-a"}}
	for _, p := range pods {
		g.Expect(p.Spec.ReadinessGates).To(ContainElement(corev1.PodReadinessGate{ConditionType: cafev1alpha1.TrafficReadyCondition}), p.Name)
		g.Expect(p.Labels).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, rev), p.Name)
		g.Expect(p.Labels).To(HaveKeyWithValue(cafev1alpha1.UnitLabel, "zone-a"), p.Name)
		g.Expect(p.Labels).To(HaveKeyWithValue("app", "web"), p.Name)
		g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v1"))

		owner := metav1.GetControllerOf(&p)
		g.Expect(owner).NotTo(BeNil(), p.Name)
		g.Expect(owner.APIVersion).To(Equal(cafev1alpha1.GroupVersion.String()))
		g.Expect(owner.Kind).To(Equal("InPlaceSet"))
		g.Expect(owner.Name).To(Equal("web"))
		g.Expect(owner.UID).To(Equal(stored.UID))

		g.Expect(p.Spec.Affinity).NotTo(BeNil(), p.Name)
		g.Expect(p.Spec.Affinity.NodeAffinity).NotTo(BeNil(), p.Name)
		required := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		g.Expect(required).NotTo(BeNil(), p.Name)
		g.Expect(required.NodeSelectorTerms).NotTo(BeEmpty())
		for _, term := range required.NodeSelectorTerms {
			g.Expect(term.MatchExpressions).To(ContainElement(pin), "every term pins %s to zone-a", p.Name)
		}

		g.Expect(lossless.GateOpen(&p)).To(BeFalse(), "%s runs nothing yet, so its gate is not open", p.Name)
	}

	g.Eventually(func(g Gomega) {
		st := getSet(ctx, g, set).Status
		g.Expect(st.Replicas).To(HaveValue(BeEquivalentTo(3)))
		g.Expect(st.UpdatedReplicas).To(HaveValue(BeEquivalentTo(3)))
		g.Expect(st.AvailableReplicas).To(HaveValue(BeEquivalentTo(0)))
		g.Expect(st.UpdateRevision).To(Equal(rev))
		g.Expect(st.ObservedGeneration).To(Equal(stored.Generation))
	}).Should(Succeed())
}

func TestTheGateOpensOnlyOnceTheContainersHaveBeenReadyForMinReadySeconds(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 1, "app:v1")
	set.Spec.UpdateStrategy.MinReadySeconds = 2
	createSet(ctx, t, g, set)
	pod := waitForPods(ctx, g, set, "web-0")[0]

	gateOpen := func(g Gomega) bool { return lossless.GateOpen(getPod(ctx, g, ns, "web-0")) }
	g.Consistently(gateOpen).WithTimeout(500*time.Millisecond).Should(BeFalse(), "containers not ready: the gate stays closed")

	// The API stores transition times in whole seconds: write a whole second,
	// so that "2s after the transition" is exact.
	since := time.Now().Truncate(time.Second)
	suite.Kubelet.RunContainers(ctx, g, &pod, since)
	openAt := since.Add(2 * time.Second)
	g.Consistently(gateOpen).WithTimeout(time.Until(openAt)-150*time.Millisecond).Should(BeFalse(), "containers ready for less than minReadySeconds")
	g.Eventually(gateOpen).WithTimeout(10 * time.Second).Should(BeTrue())

	gate := lossless.Gate(getPod(ctx, g, ns, "web-0"))
	g.Expect(gate.Reason).To(Equal(lossless.ReasonServing))
	g.Expect(gate.LastTransitionTime.Time).To(BeTemporally(">=", openAt), "opened no earlier than minReadySeconds after ContainersReady")
	g.Eventually(func(g Gomega) {
		g.Expect(getSet(ctx, g, set).Status.AvailableReplicas).To(HaveValue(BeEquivalentTo(1)))
	}).Should(Succeed())
}

func TestAnImageChangeUpdatesAPodInPlaceOnlyOnceNoEndpointSliceListsItReady(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 3, "app:v1")
	createRunningSet(ctx, t, g, set)
	slice := createServingSlice(ctx, g, set)
	oldRev := observedRevision(ctx, g, set)
	rec := suite.Record(ctx, t, g, ns)

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	newRev := observedRevision(ctx, g, set)
	g.Expect(newRev).NotTo(Equal(oldRev))

	drained := waitForOneDrain(ctx, g, set, lossless.ReasonDrainForUpdate)
	g.Consistently(func(g Gomega) {
		p := getPod(ctx, g, ns, drained.Name)
		g.Expect(p.UID).To(Equal(drained.UID))
		g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v1"), "the slice still lists the pod ready")
		g.Expect(p.Annotations).NotTo(HaveKey(inPlaceStateAnnotation))
		g.Expect(drainReasons(podsOf(ctx, g, set))).To(HaveLen(1), "maxUnavailable 1 drains one pod at a time")
	}).WithTimeout(2 * time.Second).Should(Succeed())

	setEndpoint(ctx, g, slice, drained.Name, false)
	g.Eventually(func(g Gomega) {
		p := getPod(ctx, g, ns, drained.Name)
		g.Expect(p.UID).To(Equal(drained.UID), "updated in place, not recreated")
		g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v2"))
		g.Expect(p.Labels).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, newRev))
		g.Expect(p.Annotations).To(HaveKey(inPlaceStateAnnotation))
	}).Should(Succeed())

	g.Consistently(func(g Gomega) {
		g.Expect(lossless.DrainReason(getPod(ctx, g, ns, drained.Name))).To(Equal(lossless.ReasonDrainForUpdate))
	}).Should(Succeed(), "the kubelet still reports the old image: the gate stays closed")

	// The kubelet restarts the container with the image the spec now names.
	suite.Kubelet.RunContainers(ctx, g, getPod(ctx, g, ns, drained.Name), time.Now())
	g.Eventually(func(g Gomega) {
		p := getPod(ctx, g, ns, drained.Name)
		g.Expect(p.UID).To(Equal(drained.UID))
		g.Expect(framework.Serving(p)).To(BeTrue())
		g.Expect(lossless.Gate(p).Reason).To(Equal(lossless.ReasonServing))
	}).Should(Succeed())

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.CountPodSpecChanges(events, drained.Name)).To(Equal(1), "one in-place patch")
}

func TestATrafficProviderFinalizerHoldsTheOperationUntilRemoved(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 3, "app:v1")
	createRunningSet(ctx, t, g, set)
	finalizer := cafev1alpha1.TrafficFinalizer("test")
	for _, p := range podsOf(ctx, g, set) {
		patch := client.MergeFrom(p.DeepCopy())
		p.Finalizers = append(p.Finalizers, finalizer)
		g.Expect(suite.Client.Patch(ctx, &p, patch)).To(Succeed())
	}
	rec := suite.Record(ctx, t, g, ns)

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	drained := waitForOneDrain(ctx, g, set, lossless.ReasonDrainForUpdate)
	g.Consistently(func(g Gomega) {
		p := getPod(ctx, g, ns, drained.Name)
		g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v1"), "the provider has not deregistered the pod")
		g.Expect(p.Annotations).NotTo(HaveKey(inPlaceStateAnnotation))
	}).WithTimeout(2 * time.Second).Should(Succeed())

	p := getPod(ctx, g, ns, drained.Name)
	patch := client.MergeFrom(p.DeepCopy())
	p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == finalizer })
	g.Expect(suite.Client.Patch(ctx, p, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		p := getPod(ctx, g, ns, drained.Name)
		g.Expect(p.UID).To(Equal(drained.UID))
		g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v2"))
	}).Should(Succeed())

	framework.ExpectLossless(ctx, g, rec)
}

func TestANonImageChangeDeletesTheDrainedPodAndReplacesIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 3, "app:v1")
	createRunningSet(ctx, t, g, set)
	before := map[types.UID]bool{}
	for _, p := range podsOf(ctx, g, set) {
		before[p.UID] = true
	}
	rec := suite.Record(ctx, t, g, ns)

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) {
		s.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "green"}}
	})
	newRev := observedRevision(ctx, g, set)
	drained := waitForOneDrain(ctx, g, set, lossless.ReasonDrainForUpdate)

	// The pod is bound, so its deletion is graceful: it stays Terminating
	// until the kubelet (the test) is done with it.
	var terminating *corev1.Pod
	g.Eventually(func(g Gomega) {
		terminating = getPod(ctx, g, ns, drained.Name)
		g.Expect(terminating.UID).To(Equal(drained.UID))
		g.Expect(terminating.DeletionTimestamp).NotTo(BeNil())
	}).Should(Succeed())
	g.Expect(terminating.Spec.Containers[0].Env).To(ConsistOf(corev1.EnvVar{Name: "MODE", Value: "blue"}), "deleted, never patched")
	g.Expect(lossless.DrainReason(terminating)).To(Equal(lossless.ReasonDrainForUpdate))

	// A terminating pod counts as missing: its replacement is created at
	// once, in the lowest slot no pod (terminating ones included) uses.
	var replacement *corev1.Pod
	g.Eventually(func(g Gomega) {
		replacement = getPod(ctx, g, ns, "web-3")
	}).Should(Succeed())
	g.Expect(before).NotTo(HaveKey(replacement.UID))
	g.Expect(replacement.Spec.Containers[0].Env).To(ConsistOf(corev1.EnvVar{Name: "MODE", Value: "green"}))
	g.Expect(replacement.Labels).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, newRev))
	g.Expect(replacement.Spec.ReadinessGates).To(ContainElement(corev1.PodReadinessGate{ConditionType: cafev1alpha1.TrafficReadyCondition}))
	g.Expect(getPod(ctx, g, ns, drained.Name).DeletionTimestamp).NotTo(BeNil(), "created while the old pod still terminates")

	g.Expect(suite.Client.Delete(ctx, terminating, client.GracePeriodSeconds(0), client.Preconditions{UID: &drained.UID})).To(Succeed())
	final := slices.DeleteFunc([]string{"web-0", "web-1", "web-2", "web-3"}, func(n string) bool { return n == drained.Name })
	waitForPods(ctx, g, set, final...)
	g.Consistently(func(g Gomega) {
		g.Expect(podNames(podsOf(ctx, g, set))).To(Equal(final))
		g.Expect(drainReasons(podsOf(ctx, g, set))).To(BeEmpty(), "the replacement does not run yet: no budget to drain another pod")
	}).Should(Succeed())

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.CountPodSpecChanges(events, drained.Name)).To(Equal(0), "recreated, not patched")
}

func TestAPartitionKeepsThatManyPodsOnTheOldRevision(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 3, "app:v1")
	set.Spec.UpdateStrategy.Partition = ptr.To[int32](2)
	createRunningSet(ctx, t, g, set)
	rec := suite.Record(ctx, t, g, ns)

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	newRev := observedRevision(ctx, g, set)
	var updated *corev1.Pod
	g.Eventually(func(g Gomega) {
		var onNew []corev1.Pod
		for _, p := range podsOf(ctx, g, set) {
			if p.Labels[cafev1alpha1.RevisionHashLabel] == newRev {
				onNew = append(onNew, p)
			}
		}
		g.Expect(onNew).To(HaveLen(1))
		updated = &onNew[0]
		g.Expect(updated.Spec.Containers[0].Image).To(Equal("app:v2"))
	}).Should(Succeed())
	suite.Kubelet.RunContainers(ctx, g, updated, time.Now()) // a restart with the new image

	g.Eventually(func(g Gomega) {
		s := getSet(ctx, g, set)
		g.Expect(s.Status.UpdatedReplicas).To(HaveValue(BeEquivalentTo(1)))
		g.Expect(s.Status.UpdatedReadyReplicas).To(HaveValue(BeEquivalentTo(1)))
		g.Expect(meta.IsStatusConditionTrue(s.Status.Conditions, cafev1alpha1.InPlaceSetPodsUpToDateCondition)).To(BeTrue())
		g.Expect(framework.Serving(getPod(ctx, g, ns, updated.Name))).To(BeTrue())
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		for _, p := range podsOf(ctx, g, set) {
			if p.Name == updated.Name {
				continue
			}
			g.Expect(p.Labels[cafev1alpha1.RevisionHashLabel]).NotTo(Equal(newRev), p.Name)
			g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v1"), p.Name)
			g.Expect(framework.Serving(&p)).To(BeTrue(), "%s below the partition is never drained", p.Name)
		}
	}).Should(Succeed())

	framework.ExpectLossless(ctx, g, rec)
}

func TestScaleInDrainsAPodForDeletionBeforeDeletingIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := newInPlaceSet(ns, "web", 3, "app:v1")
	createRunningSet(ctx, t, g, set)
	slice := createServingSlice(ctx, g, set)
	rec := suite.Record(ctx, t, g, ns)

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Replicas = ptr.To[int32](2) })
	drained := waitForOneDrain(ctx, g, set, lossless.ReasonDrainForDelete)
	g.Consistently(func(g Gomega) {
		p := getPod(ctx, g, ns, drained.Name)
		g.Expect(p.UID).To(Equal(drained.UID))
		g.Expect(p.DeletionTimestamp).To(BeNil(), "the slice still lists the pod ready")
	}).Should(Succeed())

	setEndpoint(ctx, g, slice, drained.Name, false)
	var terminating *corev1.Pod
	g.Eventually(func(g Gomega) {
		terminating = getPod(ctx, g, ns, drained.Name)
		g.Expect(terminating.DeletionTimestamp).NotTo(BeNil())
	}).Should(Succeed())
	g.Expect(suite.Client.Delete(ctx, terminating, client.GracePeriodSeconds(0), client.Preconditions{UID: &drained.UID})).To(Succeed())

	kept := slices.DeleteFunc([]string{"web-0", "web-1", "web-2"}, func(n string) bool { return n == drained.Name })
	waitForPods(ctx, g, set, kept...)
	g.Eventually(func(g Gomega) {
		st := getSet(ctx, g, set).Status
		g.Expect(st.Replicas).To(HaveValue(BeEquivalentTo(2)))
		g.Expect(st.AvailableReplicas).To(HaveValue(BeEquivalentTo(2)))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(podNames(podsOf(ctx, g, set))).To(Equal(kept), "nothing replaces a pod removed by scale-in")
	}).Should(Succeed())

	framework.ExpectLossless(ctx, g, rec)
}

// waitForOneDrain waits until exactly one pod of the set has its gate closed
// for an operation, for reason, and returns it.
func waitForOneDrain(ctx context.Context, g *WithT, set *cafev1alpha1.InPlaceSet, reason string) *corev1.Pod {
	var drained *corev1.Pod
	g.Eventually(func(g Gomega) {
		pods := podsOf(ctx, g, set)
		reasons := drainReasons(pods)
		g.Expect(reasons).To(HaveLen(1))
		for i := range pods {
			if reasons[pods[i].Name] != "" {
				drained = &pods[i]
			}
		}
		g.Expect(reasons[drained.Name]).To(Equal(reason))
		g.Expect(lossless.Gate(drained).Status).To(Equal(corev1.ConditionFalse))
	}).Should(Succeed())
	return drained
}
