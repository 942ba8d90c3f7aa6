package e2e

import (
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// releaseTimeline reads, from the watch stream, when each pod of the
// release started draining (the resource versions at which pods not yet on
// image closed for an operation, first time each) and when a pod on image
// became Ready (first time each), both in order. The k-th drain and the
// k-th pod back are those of the k-th pod released, whatever pod set
// mode: in place the same pod, replaced a new one.
func releaseTimeline(events []watchrec.Event, selector labels.Selector, image string) (drains, readies []uint64) {
	drained, back := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		p := e.Pod
		if p == nil || e.Synthetic || e.Type == watchrec.Deleted || !selector.Matches(labels.Set(p.Labels)) {
			continue
		}
		onImage := p.Spec.Containers[0].Image == image
		if !onImage && !drained[p.Name] && lossless.DrainReason(p) != "" {
			drained[p.Name] = true
			drains = append(drains, e.ResourceVersion)
		}
		if onImage && !back[p.Name] && podReady(p) {
			back[p.Name] = true
			readies = append(readies, e.ResourceVersion)
		}
	}
	return drains, readies
}

// mostInOperationAtOnce is the largest number of pods the watch stream
// shows closed for an operation at the same time.
func mostInOperationAtOnce(events []watchrec.Event, selector labels.Selector) int {
	most := 0
	walkOperations(events, selector, func(operating map[string]string) { most = max(most, len(operating)) })
	return most
}

// expectGroupBoundaries checks, at the end of each group but the last
// (cumulative: pods released once each group is done), whether the next
// group's first pod started draining before the group's last pod was
// Ready again. Without overlap, no boundary may show one: each is a
// barrier. With overlap, at least one must: a release that flows looks one
// group ahead of the current one, so whether a given boundary overlaps
// depends on timing (the current group's last pods, all in one unit, may
// come back while CAFE moves the current group on), but a release that
// held at every boundary would show none.
func expectGroupBoundaries(g Gomega, events []watchrec.Event, selector labels.Selector, image string, cumulative []int, overlap bool) {
	drains, readies := releaseTimeline(events, selector, image)
	total := cumulative[len(cumulative)-1]
	g.Expect(drains).To(HaveLen(total), "drains seen")
	g.Expect(readies).To(HaveLen(total), "pods back seen")
	var overlapped []int
	for k, done := range cumulative[:len(cumulative)-1] {
		nextDrain, lastBack := drains[done], readies[done-1]
		if nextDrain < lastBack {
			overlapped = append(overlapped, k)
		}
	}
	if overlap {
		g.Expect(overlapped).NotTo(BeEmpty(), "at some group's end the next group's first pod drains before the group's last pod is Ready again (drains %v, pods back %v)", drains, readies)
	} else {
		g.Expect(overlapped).To(BeEmpty(), "the next group waits until the group's last pod is Ready again at every group's end (drains %v, pods back %v)", drains, readies)
	}
}

// Issue 14: a release with no gate flows from group to group like a
// Deployment rolls: the next group's pods start draining as soon as the
// budget allows, not when the last pod of the group is back; at most a
// group's worth of pods is in operation at once, losslessly and above the
// water level. The groups are still recorded one by one.
func TestCafeDeploymentReleaseFlowsBetweenGroupsWithoutGates(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "flow"}
	g.Expect(k8sClient.Create(ctx, service(ns, "flow", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "flow", 12, podLabels)
	// Groups of 4 over three zones (2+1+1, 1+2+1, 1+1+2) with one pod in
	// operation per zone: the zone with two pods in a group releases them
	// one after the other, while the others go on into the next group.
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:     cafev1alpha1.UpgradeTypeBatch,
		BatchSize:       ptr.To(intstr.FromInt32(4)),
		MinReadySeconds: 1,
		MinAvailable:    ptr.To(intstr.FromInt32(8)),
	}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1")
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))

	rec := framework.Record(ctx, t, g, env.Admin, ns)
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	done := waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 3))
	waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v2")

	events := framework.ExpectLossless(ctx, g, rec)
	selector := labels.SelectorFromSet(podLabels)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, selector, 8))).To(BeEmpty())
	expectGroupBoundaries(g, events, selector, "example.com/app:v2", []int{4, 8, 12}, true)
	g.Expect(mostInOperationAtOnce(events, selector)).To(BeNumerically("<=", 4), "a group's worth of pods in operation at most")

	g.Expect(done.Status.Release.Groups).To(HaveLen(3))
	for _, gr := range done.Status.Release.Groups {
		g.Expect(gr.StartTime).NotTo(BeNil(), "group %d", gr.Index)
		g.Expect(gr.FinishTime).NotTo(BeNil(), "group %d", gr.Index)
	}
	starts := []int64{}
	for _, gr := range done.Status.Release.Groups {
		starts = append(starts, gr.StartTime.Unix())
	}
	g.Expect(slices.IsSorted(starts)).To(BeTrue(), "groups start in order: %v", starts)
	g.Expect(done.Status.Release.Groups[1].StartTime.Time).To(BeTemporally("<=", done.Status.Release.Groups[0].FinishTime.Time),
		"group 1 starts with group 0, not when it finished")
}

// Issue 14: `cafe deploy rollback --fast` is bounded by the water level
// alone: more pods in operation at once than the units' maxUnavailable
// would allow, never below minAvailable (watch-checked).
func TestCafeDeploymentFastRollbackIsBoundByTheWaterLevelOnly(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "fastback"}
	g.Expect(k8sClient.Create(ctx, service(ns, "fastback", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "fastback", 12, podLabels)
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:  cafev1alpha1.UpgradeTypeBatch,
		BatchSize:    ptr.To(intstr.FromInt32(3)),
		MinAvailable: ptr.To(intstr.FromString("50%")),
	}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1")
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 4))
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 4))
	waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v2")

	rec := framework.Record(ctx, t, g, env.Admin, ns)
	out, err := cafeCLI(ctx, t, ns, env.ControlPlane.KubeconfigPath(), "deploy", "rollback", cd.Name, "--fast")
	g.Expect(err).NotTo(HaveOccurred(), out)
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 1))
	waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1")

	events := framework.ExpectLossless(ctx, g, rec)
	selector := labels.SelectorFromSet(podLabels)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, selector, 6))).To(BeEmpty())
	g.Expect(mostInOperationAtOnce(events, selector)).To(And(BeNumerically(">", 3), BeNumerically("<=", 6)),
		"in operation at once: more than the three zones' maxUnavailable of 1, no more than minAvailable allows")
}
