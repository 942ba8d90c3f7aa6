package e2e

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
)

// stepMeasured is how many answers a step's share is measured over.
const stepMeasured = 2400

// runStepApp creates the app's CafeDeployment (12 pods, groups of 4) with
// a traffic step after its first group, waits until the gateway serves v1,
// and returns it with the route's rules as the app wrote them.
func (a *trafficApp) runStepApp(ctx context.Context, g Gomega, step cafev1alpha1.TrafficStep) (*cafev1alpha1.CafeDeployment, []gatewayv1.HTTPRouteRule) {
	cd := a.cafeDeployment(cafev1alpha1.PodSetTypeInPlaceSet)
	cd.Spec.Strategy.Traffic = &cafev1alpha1.TrafficStrategy{Route: a.name, Service: a.name, Steps: []cafev1alpha1.TrafficStep{step}}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	waitForRelease(ctx, g, cd, releaseCompleted)
	a.waitServed(ctx, g, "v1")
	return cd, a.getRoute(ctx, g).Spec.Rules
}

func (a *trafficApp) getRoute(ctx context.Context, g Gomega) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: a.name}, r)).To(Succeed())
	return r
}

// verifying: the release verifies group 0 and the route is steered.
func verifying(c *cafev1alpha1.CafeDeployment) bool {
	return c.Status.Release.Phase == cafev1alpha1.ReleasePhaseVerifying && ptr.Deref(c.Status.Release.CurrentGroup, -1) == 0 &&
		meta.IsStatusConditionTrue(c.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
}

// confirmGroup confirms a group as the e2e administrator (the webhook
// stamps who).
func confirmGroup(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, group int) {
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[cafev1alpha1.ConfirmGroupAnnotation] = strconv.Itoa(group)
	})).To(Succeed())
}

// expectRoutePlain waits until the route has the app's own rules again.
func (a *trafficApp) expectRoutePlain(ctx context.Context, g Gomega, original []gatewayv1.HTTPRouteRule) {
	g.Eventually(func(g Gomega) {
		r := a.getRoute(ctx, g)
		g.Expect(equality.Semantic.DeepEqual(r.Spec.Rules, original)).To(BeTrue(), "rules %+v", r.Spec.Rules)
		g.Expect(r.Annotations).NotTo(HaveKey(cafedeployment.OriginalRulesAnnotation))
	}).WithContext(ctx).Should(Succeed())
}

// skipQueued drops the seconds the load reported and nobody read yet.
func (l *load) skipQueued() {
	for {
		select {
		case <-l.seconds:
		default:
			return
		}
	}
}

// measure sums the answers of the load's next seconds, every second
// counted, until at least n answers.
func (l *load) measure(ctx context.Context, g Gomega, n int64) (ok, failed int64, versions map[string]int64) {
	versions = map[string]int64{}
	for ok < n {
		s := l.waitSecond(ctx, g, "the next second", func(loadgen.Second) bool { return true })
		ok += s.OK
		failed += s.Failed()
		for v, c := range s.Versions {
			versions[v] += c
		}
	}
	return ok, failed, versions
}

// successAnalysis creates TrafficAnalysis "success" in ns: the canary's
// success rate at the gateway at least 0.99, measured every interval
// seconds, count times, failing beyond failureLimit failed measurements.
func successAnalysis(ctx context.Context, g Gomega, ns string, interval, count, failureLimit int32) *cafev1alpha1.TrafficAnalysisReference {
	g.Expect(k8sClient.Create(ctx, &cafev1alpha1.TrafficAnalysis{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "success"},
		Spec: cafev1alpha1.TrafficAnalysisSpec{IntervalSeconds: interval, Count: count, FailureLimit: failureLimit, Metrics: []cafev1alpha1.TrafficMetric{{
			Name: "success-rate", Query: successRate,
			Threshold: cafev1alpha1.TrafficThreshold{Operator: cafev1alpha1.ThresholdAtLeast, Value: "0.99"},
		}}},
	})).To(Succeed())
	return &cafev1alpha1.TrafficAnalysisReference{Name: "success"}
}

// A 10% step after the first group, for 45 s and judged by the success
// rate at the gateway: the gateway sends the updated pods nothing while
// they are updated, then (4 of 12, a third of the requests without the
// step) 10% of the requests, measured over 2,400 answers within ±3
// percentage points; the analysis passes, the step ends by itself, the
// route is the app's own again, the release completes, and no request
// failed.
func TestTrafficStepSendsItsWeightToTheUpdatedPods(t *testing.T) {
	runsBesideOthers(t)
	g := NewWithT(t)
	ctx := testContextWithin(t, 5*time.Minute)
	a := newTrafficApp(ctx, t, g, "pay")
	cd, original := a.runStepApp(ctx, g, cafev1alpha1.TrafficStep{Group: 0, Weight: ptr.To[int32](10), DurationSeconds: ptr.To[int32](45),
		Analysis: successAnalysis(ctx, g, a.ns, 5, 3, 0)})

	l := a.startLoad(ctx, t, g)
	setImage(ctx, g, cd, a.image("v2"))
	waitForRelease(ctx, g, cd, verifying)
	// The gateway applies the route when its provider sees it: from then on
	// under a fifth of the answers come from v2 (a third without the step).
	l.waitSecond(ctx, g, "the gateway steering the route", func(s loadgen.Second) bool {
		return s.Served() && s.Versions["v2"] > 0 && 5*s.Versions["v2"] < s.OK
	})
	ok, failed, versions := l.measure(ctx, g, stepMeasured)
	share := 100 * float64(versions["v2"]) / float64(ok)
	t.Logf("during the step: %d answers, %d from v2 (%.2f%%), %d failed", ok, versions["v2"], share, failed)
	g.Expect(share).To(BeNumerically("~", 10, 3), "the measured share of the 10%% step")
	g.Expect(versions["v1"]+versions["v2"]).To(Equal(ok), "every answer from v1 or v2")

	done := waitForRelease(ctx, g, cd, releaseCompleted)
	tr := done.Status.Release.Groups[0].Traffic
	g.Expect(tr).NotTo(BeNil())
	g.Expect(tr.Split).To(Equal("10% to pay-canary"))
	g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisPassed), tr.VerdictReason)
	g.Expect(tr.Passed).To(BeEquivalentTo(3))
	g.Expect(tr.EndTime.Sub(tr.StartTime.Time)).To(BeNumerically(">=", 45*time.Second), "the step's duration")
	g.Expect(done.Status.Release.Groups[0].ConfirmedBy).To(BeEmpty(), "nobody confirmed: the step ended by itself")
	a.expectRoutePlain(ctx, g, original)
	a.waitServed(ctx, g, "v2")
	l.waitSecond(ctx, g, "a second answered only by v2", servedOnlyBy("v2"))
	expectEveryRequestServed(g, l.finish(t, g))
}

// A header step: during it only the requests with x-cafe-canary: always
// reach the updated pods, and every other request the others; after the
// confirmation the route is the app's own again.
func TestTrafficHeaderStepSendsOnlyMatchingRequestsToTheUpdatedPods(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 5*time.Minute)
	a := newTrafficApp(ctx, t, g, "cart")
	cd, original := a.runStepApp(ctx, g, cafev1alpha1.TrafficStep{Group: 0, Headers: []cafev1alpha1.TrafficHeader{{Name: "x-cafe-canary", Value: "always"}}})

	cfg := loadgen.Config{URL: env.ControlPlane.GatewayURL() + "/", Host: a.host, Rate: trafficRate / 2}
	plain := startLoadAt(ctx, t, g, "the gateway, no header", cfg)
	cfg.Headers = http.Header{"X-Cafe-Canary": {"always"}}
	marked := startLoadAt(ctx, t, g, "the gateway, x-cafe-canary: always", cfg)

	setImage(ctx, g, cd, a.image("v2"))
	waitForRelease(ctx, g, cd, verifying)
	marked.waitSecond(ctx, g, "requests with the header answered only by v2", servedOnlyBy("v2"))
	// The route is steered now; the seconds the other load has queued are
	// older (from before the release, all v1, and before the step).
	plain.skipQueued()
	plain.waitSecond(ctx, g, "requests without it answered only by v1", servedOnlyBy("v1"))
	okMarked, failedMarked, vMarked := marked.measure(ctx, g, 1000)
	okPlain, failedPlain, vPlain := plain.measure(ctx, g, 1000)
	g.Expect(vMarked).To(Equal(map[string]int64{"v2": okMarked}), "with the header: v2 alone")
	g.Expect(vPlain).To(Equal(map[string]int64{"v1": okPlain}), "without it: v1 alone")
	g.Expect(failedMarked + failedPlain).To(BeZero())

	confirmGroup(ctx, g, cd, 0)
	waitForRelease(ctx, g, cd, releaseCompleted)
	a.expectRoutePlain(ctx, g, original)
	a.waitServed(ctx, g, "v2")
	plain.waitSecond(ctx, g, "a second answered only by v2", servedOnlyBy("v2"))
	expectEveryRequestServed(g, plain.finish(t, g))
	expectEveryRequestServed(g, marked.finish(t, g))
}

// successRate is the canary's share of non-5xx answers at the gateway over
// the last 10 s, from Traefik's own metrics in the control plane's
// Prometheus. A version that answers nothing but 5xx has no non-5xx series
// at all: "or vector(0)" makes its numerator 0 rather than no data.
const successRate = `(sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*",code!~"5.."}[10s])) or vector(0)) / sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*"}[10s]))`

// A version that fails its requests, released by a ReleaseOrder
// (failurePolicy RollbackFailed) with a 20% step judged by its success rate
// at the gateway: the analysis fails, the release fails, and the order
// rolls the app back by itself; the requests that failed are at most the
// step's share of those sent while any failed; the order's trail holds the
// failing query's value; the app serves v1 alone again through the
// app's own route.
func TestTrafficAnalysisFailsAFailingVersionAndItsOrderRollsItBack(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 6*time.Minute)
	a := newRoutedApp(ctx, t, g, "web")
	strategy := trafficStrategy()
	strategy.Traffic = &cafev1alpha1.TrafficStrategy{Route: a.name, Service: a.name, Steps: []cafev1alpha1.TrafficStep{{
		Group: 0, Weight: ptr.To[int32](20), Analysis: successAnalysis(ctx, g, a.ns, 5, 3, 0),
	}}}
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: a.template("v1"),
			Service:  cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80, TargetPort: trafficPort}}},
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To[int32](trafficReplicas),
				Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
				Strategy: strategy,
			},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	waitForApp(ctx, g, app, latestIs("web-r1"))
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = "web-r1" })).To(Succeed())
	releasedRevision(ctx, g, app, "web-r1")
	a.waitServed(ctx, g, "v1")
	original := a.getRoute(ctx, g).Spec.Rules
	recordR2(ctx, g, app, a.image("v3-fail"))

	requester, _ := releaseUser(t, ctx, a.ns, "wendy", "requester")
	approver, _ := releaseUser(t, ctx, a.ns, "victor", "approver")
	operator, _ := releaseUser(t, ctx, a.ns, "olga", "operator")
	cli := func(kubeconfig string, args ...string) {
		out, err := cafeCLI(ctx, t, a.ns, kubeconfig, args...)
		g.Expect(err).NotTo(HaveOccurred(), out)
	}
	cli(requester, "release", "create", "web-v3", "--title", "web v3", "--app", "web=r2", "--failure-policy", "RollbackFailed")
	cli(approver, "release", "approve", "web-v3")
	l := a.startLoad(ctx, t, g)
	cli(operator, "release", "start", "web-v3", "--no-wait")

	cd := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name}}
	failed := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		return c.Status.Release.Phase == cafev1alpha1.ReleasePhaseFailed
	})
	tr := failed.Status.Release.Groups[0].Traffic
	t.Logf("verdict: %s (%s)", tr.Verdict, tr.VerdictReason)
	g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisFailed))
	g.Expect(tr.VerdictReason).To(MatchRegexp(`success-rate: [0-9.e-]+, not at least 0\.99`), "the failing query's value")
	g.Expect(tr.Failed).To(BeEquivalentTo(1), "failed at the first failed measurement (failure limit 0)")
	g.Expect(tr.EndTime.Sub(tr.StartTime.Time)).To(BeNumerically("<=", time.Duration(len(tr.Measurements))*5*time.Second+2*time.Second),
		"within one interval of its last measurement (an inconclusive one, before the gateway's first sample of the canary, counts for nothing)")

	// The order rolls the app back by itself (RollbackFailed) and ends.
	final := waitForOrder(ctx, g, a.ns, "web-v3", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderFailed), "%s %+v", final.Status.Message, final.Status.Apps)
	g.Expect(final.Status.AppStatus("web").Phase).To(Equal(cafev1alpha1.AppRolledBack))
	var verdict *cafev1alpha1.AuditEntry
	for i, e := range final.Status.Audit {
		if e.Action == "AnalysisFailed" {
			verdict = &final.Status.Audit[i]
		}
	}
	g.Expect(verdict).NotTo(BeNil(), "the verdict in the order's trail")
	t.Logf("trail: %s %s %s: %s", verdict.Actor, verdict.Action, verdict.After, verdict.Reason)
	g.Expect(verdict.Target).To(Equal("app/web"))
	g.Expect(verdict.After).To(Equal("group 0: Failed"))
	g.Expect(verdict.Reason).To(MatchRegexp(`success-rate = [0-9.e-]+ \(Failed\)`), "the failing query's value")
	g.Expect(verdict.Reason).To(ContainSubstring(`service=~"`+a.ns+`-web-canary-.*"`), "the query as sent")

	a.expectRoutePlain(ctx, g, original)
	a.waitServed(ctx, g, "v1")
	l.skipQueued()
	l.waitSecond(ctx, g, "a second answered only by v1", servedOnlyBy("v1"))
	report := l.stop()
	g.Expect(l.err).NotTo(HaveOccurred())
	// From the first second with a failed request to the last: the step's
	// analysis window, and the rollback if it let any request fail.
	first, last := -1, -1
	for i, s := range report.Seconds {
		if s.Failed() > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	g.Expect(first).To(BeNumerically(">=", 0), "the failing version did get its share")
	var sent, failedRequests int64
	for _, s := range report.Seconds[first : last+1] {
		sent += s.Sent
		failedRequests += s.Failed()
	}
	t.Logf("seconds %d to %d: %d sent, %d failed (%.1f%%)", first, last, sent, failedRequests, 100*float64(failedRequests)/float64(sent))
	g.Expect(float64(failedRequests)).To(BeNumerically("<=", 0.23*float64(sent)), "at most the step's 20%% (+3 points) of the requests failed")
}

// Prometheus stopped in the middle of an analysis: the measurements are
// inconclusive, the step waits and says why (it never passes on missing
// data), and once Prometheus is back the analysis resumes, passes, and the
// release completes.
func TestTrafficAnalysisWaitsWhilePrometheusIsDownAndResumesWhenItIsBack(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 5*time.Minute)
	a := newTrafficApp(ctx, t, g, "bank")
	cd, original := a.runStepApp(ctx, g, cafev1alpha1.TrafficStep{Group: 0, Weight: ptr.To[int32](10), Analysis: successAnalysis(ctx, g, a.ns, 3, 4, 0)})
	l := a.startLoad(ctx, t, g)
	setImage(ctx, g, cd, a.image("v2"))
	trafficOf := func(c *cafev1alpha1.CafeDeployment) *cafev1alpha1.TrafficStepStatus {
		if len(c.Status.Release.Groups) == 0 {
			return nil
		}
		return c.Status.Release.Groups[0].Traffic
	}
	measuring := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		tr := trafficOf(c)
		return verifying(c) && tr != nil && tr.Passed > 0
	})
	passedBefore := trafficOf(measuring).Passed
	g.Expect(env.ControlPlane.Kill(controlplane.PrometheusComponent)).To(Succeed())
	down := true
	defer func() {
		if down {
			g.Expect(env.ControlPlane.Restart(context.Background(), controlplane.PrometheusComponent)).To(Succeed())
		}
	}()

	waiting := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		tr := trafficOf(c)
		return tr != nil && tr.Inconclusive >= 3
	})
	tr := trafficOf(waiting)
	t.Logf("while Prometheus is down: %s", tr.VerdictReason)
	g.Expect(waiting.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying), "the step waits")
	g.Expect(tr.Verdict).To(BeEmpty(), "missing data never passes nor fails")
	g.Expect(tr.Passed).To(Equal(passedBefore))
	g.Expect(tr.VerdictReason).To(ContainSubstring("Prometheus unreachable"))
	c := meta.FindStatusCondition(waiting.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Message).To(ContainSubstring("Prometheus unreachable"), "the condition says why the step waits")
	g.Expect(ptr.Deref(waiting.Status.UpdatedReplicas, 0)).To(BeEquivalentTo(4), "nothing past the beta group")

	g.Expect(env.ControlPlane.Restart(ctx, controlplane.PrometheusComponent)).To(Succeed())
	down = false
	done := waitForRelease(ctx, g, cd, releaseCompleted)
	tr = trafficOf(done)
	g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisPassed), tr.VerdictReason)
	g.Expect(tr.Passed).To(BeEquivalentTo(4))
	g.Expect(tr.Inconclusive).To(BeNumerically(">=", 3))
	a.expectRoutePlain(ctx, g, original)
	a.waitServed(ctx, g, "v2")
	l.waitSecond(ctx, g, "a second answered only by v2", servedOnlyBy("v2"))
	expectEveryRequestServed(g, l.finish(t, g))
}

// backendsOf names each backendRef of a rule with its weight.
func backendsOf(rule gatewayv1.HTTPRouteRule) map[string]int32 {
	out := map[string]int32{}
	for _, b := range rule.BackendRefs {
		out[string(b.Name)] = ptr.Deref(b.Weight, 1)
	}
	return out
}

// A person overrides an analysis that has no data (nobody sends requests):
// CAFE's webhook records the user the API server authenticated, a forged
// name is refused, and the step passes with who and why in the record.
func TestTrafficAnalysisOverrideIsRecordedWithTheAuthenticatedUser(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 4*time.Minute)
	a := newTrafficApp(ctx, t, g, "shop")
	cd, original := a.runStepApp(ctx, g, cafev1alpha1.TrafficStep{Group: 0, Weight: ptr.To[int32](10), Analysis: successAnalysis(ctx, g, a.ns, 2, 3, 0)})
	setImage(ctx, g, cd, a.image("v2"))
	waiting := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		tr := c.Status.Release.Groups
		return verifying(c) && len(tr) > 0 && tr[0].Traffic != nil && tr[0].Traffic.Inconclusive > 0
	})
	g.Expect(waiting.Status.Release.Groups[0].Traffic.VerdictReason).To(ContainSubstring("no data"), "no requests, no data: the step waits")

	forged := update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Annotations[cafev1alpha1.OverrideAnalysisGroupAnnotation] = "0"
		c.Annotations[cafev1alpha1.OverrideAnalysisReasonAnnotation] = "signed by someone else"
		c.Annotations[cafev1alpha1.AnalysisOverriddenByAnnotation] = "somebody-else"
	})
	g.Expect(forged).To(MatchError(ContainSubstring("cafe.io/analysis-overridden-by")), "a client cannot name who overrode")

	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Annotations[cafev1alpha1.OverrideAnalysisGroupAnnotation] = "0"
		c.Annotations[cafev1alpha1.OverrideAnalysisReasonAnnotation] = "no traffic in the maintenance window, CHG-42"
	})).To(Succeed())
	done := waitForRelease(ctx, g, cd, releaseCompleted)
	tr := done.Status.Release.Groups[0].Traffic
	g.Expect(tr.Verdict).To(Equal(cafev1alpha1.AnalysisPassed))
	g.Expect(tr.OverriddenBy).To(Equal(done.Annotations[cafev1alpha1.AnalysisOverriddenByAnnotation]))
	g.Expect(tr.OverriddenBy).To(Equal("cafe-admin"), "the user the API server authenticated for the e2e's client")
	g.Expect(tr.OverrideReason).To(Equal("no traffic in the maintenance window, CHG-42"))
	a.expectRoutePlain(ctx, g, original)
}
