package cafedeployment_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// successAnalysis judges the canary by the success ratio the test sets for
// it: at least 0.99, measured every second, count times.
func successAnalysis(ctx context.Context, g *WithT, ns string, count, failureLimit int32) {
	g.Expect(suite.Client.Create(ctx, &cafev1alpha1.TrafficAnalysis{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "success"},
		Spec: cafev1alpha1.TrafficAnalysisSpec{IntervalSeconds: 1, Count: count, FailureLimit: failureLimit, Metrics: []cafev1alpha1.TrafficMetric{{
			Name:      "success-rate",
			Query:     `cafe_test_success_ratio{namespace="$namespace",service="$canary"}`,
			Threshold: cafev1alpha1.TrafficThreshold{Operator: cafev1alpha1.ThresholdAtLeast, Value: "0.99"},
		}}},
	})).To(Succeed())
}

// analysedStep is a 10% step after the beta group judged by "success".
var analysedStep = cafev1alpha1.TrafficStep{Group: 0, Weight: ptr.To[int32](10), Analysis: &cafev1alpha1.TrafficAnalysisReference{Name: "success"}}

// releaseImage changes cd's image: a new release.
func releaseImage(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, image string) {
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) { cd.Spec.Template.Spec.Containers[0].Image = image })
}

// releasedAt runs cd to completion at its first image.
func releasedAt(ctx context.Context, t *testing.T, g *WithT, cd *cafev1alpha1.CafeDeployment) {
	createDeployment(ctx, t, g, cd)
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, cd.Namespace)
		g.Expect(getDeployment(ctx, g, cd).Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
	}).Should(Succeed())
}

func TestAPassingAnalysisEndsItsStepAndTheReleaseGoesOn(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	original := appRoute(ctx, g, ns, "shop")
	successAnalysis(ctx, g, ns, 2, 0)
	canaryMetrics.set(ns, "shop-canary", "0.999")
	cd := trafficDeployment(ns, analysedStep)
	releasedAt(ctx, t, g, cd)

	releaseImage(ctx, g, cd, "app:v2")
	var tr *cafev1alpha1.TrafficStepStatus
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
		tr = got.Status.Release.Groups[0].Traffic
		g.Expect(tr).NotTo(BeNil(), "the release of v2, not the one before")
		g.Expect(getRoute(ctx, g, ns, "shop").Spec.Rules).To(Equal(original))
	}).WithTimeout(time.Minute).Should(Succeed())
	g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisPassed))
	g.Expect(tr.VerdictReason).To(Equal("2 of 2 conclusive measurements passed (failure limit 0)"))
	done := getDeployment(ctx, g, cd)
	g.Expect(done.Status.Release.Verdict).To(Equal(cafev1alpha1.AnalysisPassed), "the Verdict column")
	g.Expect(done.Status.Release.TrafficStep).To(BeEmpty(), "no step runs")
	g.Expect(tr.Passed).To(BeEquivalentTo(2))
	g.Expect(tr.Measurements).To(HaveLen(2))
	m := tr.Measurements[1].Metrics[0]
	g.Expect(m.Query).To(Equal(`cafe_test_success_ratio{namespace="`+ns+`",service="shop-canary"}`), "the query as sent")
	g.Expect(m.Value).To(Equal("0.999"))
	g.Expect(m.Message).To(Equal("0.999, at least 0.99"))
	g.Expect(tr.EndTime.Time).NotTo(BeTemporally("<", tr.Measurements[1].Time.Time))
}

func TestAFailingAnalysisSendsTheUpdatedPodsNothingAndFailsTheRelease(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	original := appRoute(ctx, g, ns, "shop")
	successAnalysis(ctx, g, ns, 3, 0)
	canaryMetrics.set(ns, "shop-canary", "0.5")
	cd := trafficDeployment(ns, analysedStep)
	releasedAt(ctx, t, g, cd)

	releaseImage(ctx, g, cd, "app:v2")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseFailed))
		tr := got.Status.Release.Groups[0].Traffic
		g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisFailed))
		g.Expect(tr.Failed).To(BeEquivalentTo(1), "the first failure is beyond the limit of 0")
		g.Expect(got.Status.Release.Verdict).To(Equal(cafev1alpha1.AnalysisFailed), "the Verdict column")
		c := meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.CafeDeploymentAnalysisFailedReason))
		g.Expect(c.Message).To(ContainSubstring("success-rate: 0.5, not at least 0.99"))
		g.Expect(meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.CafeDeploymentProgressingCondition).Reason).To(Equal(cafev1alpha1.CafeDeploymentReleaseFailedReason))
		rules := getRoute(ctx, g, ns, "shop").Spec.Rules
		g.Expect(backendsOf(rules[0])).To(Equal(map[string]int32{"shop-canary": 0, "shop-stable": 100}), "nothing to the judged pods")
	}).WithTimeout(time.Minute).Should(Succeed())
	g.Consistently(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseFailed))
		g.Expect(got.Status.UpdatedReplicas).To(HaveValue(BeEquivalentTo(3)), "nothing past the beta group")
	}).WithTimeout(2 * time.Second).Should(Succeed())
	events := &corev1.EventList{}
	g.Expect(suite.Client.List(ctx, events, client.InNamespace(ns))).To(Succeed())
	g.Expect(events.Items).To(ContainElement(And(HaveField("Reason", "AnalysisFailed"), HaveField("Message", ContainSubstring("0.5, not at least 0.99")))))

	// Rolled back: a new release replacing an unfinished one runs without
	// its traffic steps (no stable revision to compare with), the route the
	// app's own again. The canary still reports 0.5: no analysis runs.
	rejected := getDeployment(ctx, g, cd).Status.UpdateRevision
	releaseImage(ctx, g, cd, "app:v1")
	// Until the rollback completes, the rejected pods get nothing: every
	// request goes to the stable Service, which selects the pods of v1.
	g.Eventually(func(g Gomega) {
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.RejectedRevision).To(Equal(rejected))
		g.Expect(got.Status.UpdateRevision).NotTo(Equal(rejected))
		g.Expect(backendsOf(getRoute(ctx, g, ns, "shop").Spec.Rules[0])).To(Equal(map[string]int32{"shop-canary": 0, "shop-stable": 100}))
		stable := &corev1.Service{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-stable"}, stable)).To(Succeed())
		g.Expect(stable.Spec.Selector).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, got.Status.UpdateRevision))
		c := meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.CafeDeploymentRollingBackRejectedReason))
	}).WithTimeout(time.Minute).Should(Succeed())
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
		g.Expect(got.Status.Release.TrafficStepsSkipped).To(BeTrue())
		g.Expect(got.Status.UpdatedReplicas).To(HaveValue(BeEquivalentTo(6)))
		g.Expect(getRoute(ctx, g, ns, "shop").Spec.Rules).To(Equal(original))
	}).WithTimeout(time.Minute).Should(Succeed())
}

func TestAnAnalysisWithoutDataWaitsAndSaysWhy(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appRoute(ctx, g, ns, "shop")
	successAnalysis(ctx, g, ns, 1, 0)
	cd := trafficDeployment(ns, analysedStep)
	releasedAt(ctx, t, g, cd)

	releaseImage(ctx, g, cd, "app:v2")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
		tr := got.Status.Release.Groups[0].Traffic
		g.Expect(tr.Inconclusive).To(BeNumerically(">=", 2))
		g.Expect(tr.VerdictReason).To(ContainSubstring("waiting, the last measurement was Inconclusive: success-rate: no data"))
		c := meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
		g.Expect(c.Message).To(ContainSubstring("until TrafficAnalysis success passes (0 of 1 conclusive measurements so far"))
	}).WithTimeout(time.Minute).Should(Succeed())

	canaryMetrics.set(ns, "shop-canary", "1")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
		g.Expect(got.Status.Release.Groups[0].Traffic.Verdict).To(Equal(cafev1alpha1.AnalysisPassed))
	}).WithTimeout(time.Minute).Should(Succeed())
}

// failedAnalysis releases v2 of a CafeDeployment whose 10% step after the
// beta group is judged by "success" on a canary answering 50%: the release
// fails. It returns the CafeDeployment and the route's own rules.
func failedAnalysis(ctx context.Context, t *testing.T, g *WithT, ns string) (*cafev1alpha1.CafeDeployment, []gatewayv1.HTTPRouteRule) {
	original := appRoute(ctx, g, ns, "shop")
	successAnalysis(ctx, g, ns, 3, 0)
	canaryMetrics.set(ns, "shop-canary", "0.5")
	cd := trafficDeployment(ns, analysedStep)
	releasedAt(ctx, t, g, cd)
	releaseImage(ctx, g, cd, "app:v2")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		g.Expect(getDeployment(ctx, g, cd).Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseFailed))
	}).WithTimeout(time.Minute).Should(Succeed())
	return cd, original
}

// overrideAnalysis overrides group's analysis as user, stamped as CAFE's
// webhook stamps it (this suite runs no webhook).
func overrideAnalysis(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, group int, user, reason string) {
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) {
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[cafev1alpha1.OverrideAnalysisGroupAnnotation] = fmt.Sprint(group)
		cd.Annotations[cafev1alpha1.OverrideAnalysisReasonAnnotation] = reason
		cd.Annotations[cafev1alpha1.AnalysisOverriddenByAnnotation] = user
		cd.Annotations[cafev1alpha1.AnalysisOverriddenAtAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
	})
}

func TestAnOverrideLetsAFailedStepPassRecordingWhoAndWhy(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd, original := failedAnalysis(ctx, t, g, ns)

	overrideAnalysis(ctx, g, cd, 0, "alice", "the probe's metric is wrong, INC-4711")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
		tr := got.Status.Release.Groups[0].Traffic
		g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisPassed))
		g.Expect(tr.OverriddenBy).To(Equal("alice"))
		g.Expect(tr.OverrideReason).To(Equal("the probe's metric is wrong, INC-4711"))
		g.Expect(tr.VerdictReason).To(HavePrefix("overridden by alice: the probe's metric is wrong, INC-4711 (the analysis: Failed, "))
		g.Expect(getRoute(ctx, g, ns, "shop").Spec.Rules).To(Equal(original))
	}).WithTimeout(time.Minute).Should(Succeed())
	events := &corev1.EventList{}
	g.Expect(suite.Client.List(ctx, events, client.InNamespace(ns))).To(Succeed())
	g.Expect(events.Items).To(ContainElement(And(HaveField("Reason", "AnalysisOverridden"), HaveField("Message", ContainSubstring("alice overrode the analysis of group 0 (Failed)")))))
}

func TestAnOverrideWithoutTheWebhooksStampIsIgnored(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd, _ := failedAnalysis(ctx, t, g, ns)

	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) {
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[cafev1alpha1.OverrideAnalysisGroupAnnotation] = "0"
		cd.Annotations[cafev1alpha1.OverrideAnalysisReasonAnnotation] = "nobody signed this"
	})
	g.Consistently(func(g Gomega) {
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseFailed))
		g.Expect(got.Status.Release.Groups[0].Traffic.OverriddenBy).To(BeEmpty())
	}).WithTimeout(2 * time.Second).Should(Succeed())
}
