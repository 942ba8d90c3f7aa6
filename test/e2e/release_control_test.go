package e2e

import (
	"context"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// walkOperations replays the watch stream's pod events (of the pods
// selector matches; nil: all) and calls visit after each with the pods
// then closed for an operation, by name, with their unit.
func walkOperations(events []watchrec.Event, selector labels.Selector, visit func(operating map[string]string)) {
	operating := map[string]string{} // pod -> unit
	for _, e := range events {
		p := e.Pod
		if p == nil || (selector != nil && !selector.Matches(labels.Set(p.Labels))) {
			continue
		}
		if e.Type == watchrec.Deleted || lossless.DrainReason(p) == "" {
			delete(operating, p.Name)
		} else {
			operating[p.Name] = p.Labels[cafev1alpha1.UnitLabel]
		}
		visit(operating)
	}
}

// unitsInOperationAtOnce returns the largest set of units that had pods in
// operation at the same time.
func unitsInOperationAtOnce(events []watchrec.Event) []string {
	var widest []string
	walkOperations(events, nil, func(operating map[string]string) {
		units := map[string]bool{}
		for _, u := range operating {
			units[u] = true
		}
		if len(units) > len(widest) {
			widest = widest[:0]
			for u := range units {
				widest = append(widest, u)
			}
			sort.Strings(widest)
		}
	})
	return widest
}

// Issue scenario 4: groupOrder UnitByUnit never has pods of two units in
// operation at once.
func TestUnitByUnitNeverOperatesInTwoZonesAtOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "ubu"}
	cd := cafeDeployment(ns, "ubu", 6, podLabels)
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:    cafev1alpha1.UpgradeTypeBatch,
		BatchSize:      ptr.To(intstr.FromInt32(2)),
		GroupOrder:     cafev1alpha1.GroupOrderUnitByUnit,
		MaxUnavailable: ptr.To(intstr.FromInt32(2)),
	}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1")

	rec := framework.Record(ctx, t, g, env.Admin, ns)
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))
	waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")

	events := framework.ExpectLossless(ctx, g, rec)
	widest := unitsInOperationAtOnce(events)
	g.Expect(widest).To(HaveLen(1), "pods of %v were in operation at the same time", widest)
}

// Issue scenario 5: pausing mid-release stops further pod operations;
// resuming finishes the release; rolling back returns every pod to the
// previous revision through the same protocol.
func TestPauseResumeAndRollback(t *testing.T) {
	runsBesideOthers(t)
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "pause"}
	g.Expect(k8sClient.Create(ctx, service(ns, "pause", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "pause", 6, podLabels)
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:     cafev1alpha1.UpgradeTypeBatch,
		MinReadySeconds: 1,
		MinAvailable:    ptr.To(intstr.FromInt32(5)),
	}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1"))

	rec := framework.Record(ctx, t, g, env.Admin, ns)
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())

	// Pause as soon as the first pod runs the new image.
	g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
		return updatedPodsTotal(ps, "example.com/app:v2") >= 1
	})).To(Succeed())
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.Pause = true })).To(Succeed())
	paused := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		return c.Status.Release.Phase == cafev1alpha1.ReleasePhasePaused
	})
	g.Expect(paused.Annotations).To(HaveKeyWithValue(cafev1alpha1.PausedByAnnotation, "cafe-admin"))
	waitForPodSetsPaused(ctx, g, ns, cd.Name)

	// Once every pod set has seen the pause, in-flight operations settle and
	// no new drain starts: watch for a while and compare.
	g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
		return all(ps, func(p *corev1.Pod) bool { return lossless.DrainReason(p) == "" && podReady(p) })
	})).To(Succeed())
	settled := updatedPodsTotal(listPods(ctx, g, ns, podLabels), "example.com/app:v2")
	g.Expect(settled).To(BeNumerically("<", 6), "the pause must land before the release finished")
	g.Consistently(func() int {
		return updatedPodsTotal(listPods(ctx, g, ns, podLabels), "example.com/app:v2")
	}).WithTimeout(3 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(settled))

	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.Pause = false })).To(Succeed())
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 1))
	waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")

	// Rollback: the previous template again, released through the protocol.
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v1"
	})).To(Succeed())
	done := waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 1))
	after := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1")
	g.Expect(identities(after)).To(Equal(before))
	g.Expect(done.Annotations).To(HaveKeyWithValue(cafev1alpha1.ResumedByAnnotation, "cafe-admin"))

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), 5))).To(BeEmpty())
}

func updatedPodsTotal(pods []*corev1.Pod, image string) int {
	n := 0
	for _, p := range pods {
		if s := containerStatus(p, "app"); s != nil && s.Image == image && p.Spec.Containers[0].Image == image {
			n++
		}
	}
	return n
}

func waitForPodSetsPaused(ctx context.Context, g Gomega, ns, cdName string) {
	err := framework.WaitForList(ctx, k8sClient, &cafev1alpha1.InPlaceSetList{}, func(items []runtime.Object) bool {
		for _, o := range items {
			s := o.(*cafev1alpha1.InPlaceSet)
			if !s.Spec.UpdateStrategy.Paused || s.Status.ObservedGeneration != s.Generation {
				return false
			}
		}
		return len(items) == 3
	}, client.InNamespace(ns), client.MatchingLabels{cafev1alpha1.DeploymentLabel: cdName})
	g.Expect(err).NotTo(HaveOccurred(), "pod sets never all observed the pause")
}
