package deploy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/deploy"
	"github.com/cafe-io/cafe/test/framework"
)

func TestConfirmRefusesAReleaseNotWaitingForConfirmation(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) {
		st.Release = cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseProgressing, CurrentGroup: ptr.To[int32](1), TotalGroups: ptr.To[int32](3)}
	})

	res := run(ctx, k8sClient, ns, "confirm", "web")

	g.Expect(res.Err).To(MatchError(ContainSubstring("CafeDeployment " + ns + "/web is not waiting for a confirmation (phase Progressing, group 1 of 3)")))
	g.Expect(get(ctx, g, cd).Annotations).NotTo(HaveKey(cafev1alpha1.ConfirmGroupAnnotation))
}

func TestConfirmSetsTheAwaitedGroupWithoutAUserName(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	writeStatus(ctx, g, cd, waitingAt(cd, 1, 3))

	res := run(ctx, k8sClient, ns, "confirm", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	after := get(ctx, g, cd)
	g.Expect(after.Annotations).To(HaveKeyWithValue(cafev1alpha1.ConfirmGroupAnnotation, "1"))
	g.Expect(after.Annotations).NotTo(HaveKey(cafev1alpha1.ConfirmedByAnnotation), "the CLI never writes who confirmed")
	g.Expect(res.Out).To(ContainSubstring("confirmed group 1 of CafeDeployment " + ns + "/web"))
	// envtest runs no admission webhook, so nothing stamps the user.
	g.Expect(res.ErrOut).To(ContainSubstring("the server recorded no cafe.io/confirmed-by"))
}

func TestConfirmWithAnExplicitGroupSetsThatGroup(t *testing.T) {
	ctx, g, ns, cd := webTest(t)

	res := run(ctx, k8sClient, ns, "confirm", "web", "--group", "2")

	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(get(ctx, g, cd).Annotations).To(HaveKeyWithValue(cafev1alpha1.ConfirmGroupAnnotation, "2"))
	g.Expect(res.ErrOut).To(ContainSubstring("is not waiting for a confirmation of group 2"))
}

func TestConfirmDecidesAgainWhenTheReleaseMovedOnMeanwhile(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	writeStatus(ctx, g, cd, waitingAt(cd, 1, 3))
	// Between the command's read and its patch, the release goes on (say,
	// someone else confirmed and the controller advanced).
	c := &interferingClient{Client: k8sClient, interfere: func() {
		writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) {
			st.Release.Phase = cafev1alpha1.ReleasePhaseProgressing
			st.Release.CurrentGroup = ptr.To[int32](2)
		})
	}}

	res := run(ctx, c, ns, "confirm", "web")

	g.Expect(res.Err).To(MatchError(ContainSubstring("is not waiting for a confirmation (phase Progressing, group 2 of 3)")))
	g.Expect(get(ctx, g, cd).Annotations).NotTo(HaveKey(cafev1alpha1.ConfirmGroupAnnotation), "the stale patch must not have been applied")
}

func TestConfirmRetriesWhenAnUnrelatedChangeConflicts(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	writeStatus(ctx, g, cd, waitingAt(cd, 0, 3))
	c := &interferingClient{Client: k8sClient, interfere: func() {
		current := get(ctx, g, cd)
		patch := client.MergeFrom(current.DeepCopy())
		metav1.SetMetaDataLabel(&current.ObjectMeta, "team", "shop")
		g.Expect(k8sClient.Patch(ctx, current, patch)).To(Succeed())
	}}

	res := run(ctx, c, ns, "confirm", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	after := get(ctx, g, cd)
	g.Expect(after.Annotations).To(HaveKeyWithValue(cafev1alpha1.ConfirmGroupAnnotation, "0"))
	g.Expect(after.Labels).To(HaveKeyWithValue("team", "shop"))
	g.Expect(c.patches).To(BeNumerically(">=", 2), "the first, stale patch must have been refused and retried")
}

func TestPauseAndResumeFlipSpecStrategyPause(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	ref := "CafeDeployment " + ns + "/web"

	res := run(ctx, k8sClient, ns, "pause", "web")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(get(ctx, g, cd).Spec.Strategy.Pause).To(BeTrue())
	g.Expect(res.Out).To(HavePrefix("paused " + ref))

	res = run(ctx, k8sClient, ns, "pause", "web")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(Equal(ref + " is already paused\n"))

	res = run(ctx, k8sClient, ns, "resume", "web")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(get(ctx, g, cd).Spec.Strategy.Pause).To(BeFalse())
	g.Expect(res.Out).To(Equal("resumed " + ref + "\n"))

	res = run(ctx, k8sClient, ns, "resume", "web")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(Equal(ref + " is not paused: nothing to resume\n"))
}

// twoRevisions creates web at app:v1, then releases app:v2, recording both
// revisions and the status the controller would, and returns the hashes.
func twoRevisions(t *testing.T, g Gomega, ns string) (cd *cafev1alpha1.CafeDeployment, h1, h2 string) {
	ctx := requireAPIServer(t)
	cd = create(ctx, g, newCafeDeployment(ns, "web", "app:v1"))
	h1 = recordRevision(ctx, g, cd, 1)
	setImage(ctx, g, cd, "app:v2")
	h2 = recordRevision(ctx, g, cd, 2)
	cd = get(ctx, g, cd)
	cd = writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) {
		st.ObservedGeneration = cd.Generation
		st.CurrentRevision, st.UpdateRevision = h1, h2
	})
	return cd, h1, h2
}

func TestRollbackRestoresThePreviousRevision(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	cd, h1, _ := twoRevisions(t, g, ns)
	// A fast-release request left from an earlier rollback to the same
	// revision must not make this one fast.
	stale := client.MergeFrom(cd.DeepCopy())
	metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, h1)
	g.Expect(k8sClient.Patch(ctx, cd, stale)).To(Succeed())

	res := run(ctx, k8sClient, ns, "rollback", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(HavePrefix("rolling back web to revision 1 (" + h1 + ")\n"))
	after := get(ctx, g, cd)
	g.Expect(after.Spec.Template.Spec.Containers[0].Image).To(Equal("app:v1"))
	g.Expect(after.Annotations).NotTo(HaveKey(cafev1alpha1.FastReleaseAnnotation))
}

func TestRollbackFastAsksForAOneGroupReleaseOfTheTarget(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	cd, h1, _ := twoRevisions(t, g, ns)

	res := run(ctx, k8sClient, ns, "rollback", "web", "--fast", "--to-revision", h1)

	g.Expect(res.Err).NotTo(HaveOccurred())
	after := get(ctx, g, cd)
	g.Expect(after.Spec.Template.Spec.Containers[0].Image).To(Equal("app:v1"))
	g.Expect(after.Annotations).To(HaveKeyWithValue(cafev1alpha1.FastReleaseAnnotation, h1))
	g.Expect(res.ErrOut).NotTo(ContainSubstring("hashes to"), "the restored template must hash to the revision, or the controller ignores --fast")
}

func TestRollbackRefusesTheUpdateRevision(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	cd, _, h2 := twoRevisions(t, g, ns)

	res := run(ctx, k8sClient, ns, "rollback", "web", "--to-revision", "2")

	g.Expect(res.Err).To(MatchError(ContainSubstring("revision 2 (" + h2 + ") is already the update revision of CafeDeployment " + ns + "/web")))
	g.Expect(get(ctx, g, cd).Spec.Template.Spec.Containers[0].Image).To(Equal("app:v2"))
}

func TestRollbackRefusesWithoutAnEarlierRevision(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	h1 := recordRevision(ctx, g, cd, 1)
	writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) { st.CurrentRevision, st.UpdateRevision = h1, h1 })

	res := run(ctx, k8sClient, ns, "rollback", "web")

	g.Expect(res.Err).To(MatchError(ContainSubstring("has no revision to roll back to")))
}

func TestHistoryListsRevisionsWithTheirImagesAndMarks(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	_, h1, h2 := twoRevisions(t, g, ns)

	res := run(ctx, k8sClient, ns, "history", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	rows := strings.Split(strings.TrimSpace(res.Out), "\n")
	g.Expect(rows).To(HaveLen(3), res.Out)
	g.Expect(strings.Fields(rows[1])).To(HaveExactElements("1", h1, Not(BeEmpty()), "app=app:v1", "current"))
	g.Expect(strings.Fields(rows[2])).To(HaveExactElements("2", h2, Not(BeEmpty()), "app=app:v2", "update"))
}

func TestStatusShowsTheGroupTableWithWhoConfirmed(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	at := metav1.NewTime(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) {
		waitingAt(cd, 1, 3)(st)
		st.Release.Groups[0].ConfirmedBy, st.Release.Groups[0].ConfirmedAt = "alice@example.com", &at
		st.Units = []cafev1alpha1.UnitStatus{{Name: "zone-a", DesiredReplicas: ptr.To[int32](2), ReadyReplicas: ptr.To[int32](2), AvailableReplicas: ptr.To[int32](2), UpdatedReplicas: ptr.To[int32](1)}}
		st.Conditions = []metav1.Condition{{Type: "WaitingForConfirm", Status: metav1.ConditionTrue, Reason: "WaitingForConfirm", Message: "group 1 of 3 finished", LastTransitionTime: at}}
	})

	res := run(ctx, k8sClient, ns, "status", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(MatchRegexp(`(?m)^Phase:\s+WaitingForConfirm, group 1 of 3$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^  INDEX\s+START\s+FINISH\s+CONFIRMED BY\s+CONFIRMED AT$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^  0\s+\S+\s+\S+\s+alice@example.com\s+2026-08-01T10:00:00Z$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^  zone-a\s+2\s+2\s+2\s+1$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^  WaitingForConfirm\s+True\s+WaitingForConfirm\s+group 1 of 3 finished$`))
	g.Expect(res.ErrOut).To(BeEmpty(), "the status is up to date with the spec")
}

func TestStatusWarnsWhenTheControllerHasNotSeenTheSpec(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	writeStatus(ctx, g, cd, waitingAt(cd, 0, 3))
	setImage(ctx, g, cd, "app:v2")

	res := run(ctx, k8sClient, ns, "status", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.ErrOut).To(ContainSubstring("the controller has not seen the latest spec yet (status.observedGeneration 1 < metadata.generation 2)"))
}

func TestStatusPrintsTheObjectAsJSONOrYAML(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	create(ctx, g, newCafeDeployment(ns, "web", "app:v1"))

	res := run(ctx, k8sClient, ns, "status", "web", "-o", "json")
	g.Expect(res.Err).NotTo(HaveOccurred())
	var obj map[string]any
	g.Expect(json.Unmarshal([]byte(res.Out), &obj)).To(Succeed())
	g.Expect(obj).To(HaveKeyWithValue("apiVersion", "cafe.io/v1alpha1"))
	g.Expect(obj).To(HaveKeyWithValue("kind", "CafeDeployment"))
	g.Expect(obj["metadata"]).To(HaveKeyWithValue("name", "web"))
	g.Expect(obj["metadata"]).NotTo(HaveKey("managedFields"))

	res = run(ctx, k8sClient, ns, "status", "web", "-o", "yaml")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(MatchRegexp(`(?m)^kind: CafeDeployment$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^  name: web$`))
}

func TestCommandsNameAMissingCafeDeployment(t *testing.T) {
	ctx := requireAPIServer(t)
	ns := framework.CreateNamespace(t, k8sClient)
	for _, verb := range []string{"status", "confirm", "pause", "resume", "rollback", "history"} {
		t.Run(verb, func(t *testing.T) {
			res := run(ctx, k8sClient, ns, verb, "nope")
			NewWithT(t).Expect(res.Err).To(MatchError(ContainSubstring("CafeDeployment " + ns + "/nope not found: check the name and --namespace")))
		})
	}
}

func TestNamesCompleteFromTheNamespace(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	create(ctx, g, newCafeDeployment(ns, "web", "app:v1"))
	create(ctx, g, newCafeDeployment(ns, "web-canary", "app:v1"))
	create(ctx, g, newCafeDeployment(ns, "api", "app:v1"))

	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	o := deploy.NewOptions(streams)
	o.Client = k8sClient
	cmd := deploy.NewCmdWithOptions(o)
	cmd.SetOut(out)
	cmd.SetArgs([]string{"__complete", "rollback", "--namespace=" + ns, "we"})
	g.Expect(cmd.ExecuteContext(ctx)).To(Succeed())

	// Cobra prints one completion per line, then the directive.
	g.Expect(strings.Split(strings.TrimSpace(out.String()), "\n")).To(HaveExactElements("web", "web-canary", ":4"))
}

func TestStatusShowsTheTrafficStepsWithTheirLatestValues(t *testing.T) {
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	cd := newCafeDeployment(ns, "web", "app:v1")
	cd.Spec.Strategy.Traffic = &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: []cafev1alpha1.TrafficStep{
		{Group: 0, Weight: ptr.To[int32](10), Analysis: &cafev1alpha1.TrafficAnalysisReference{Name: "success"}},
	}}
	cd = create(ctx, g, cd)
	at := metav1.NewTime(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))
	writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) {
		waitingAt(cd, 0, 3)(st)
		st.Release.Phase = cafev1alpha1.ReleasePhaseVerifying
		st.Release.Groups[0].Traffic = &cafev1alpha1.TrafficStepStatus{Split: "10% to web-canary", StartTime: &at, Passed: 1, Inconclusive: 2,
			Measurements: []cafev1alpha1.TrafficMeasurement{{Time: at, Outcome: cafev1alpha1.AnalysisPassed, Metrics: []cafev1alpha1.TrafficMetricValue{
				{Name: "success-rate", Value: "0.998", Outcome: cafev1alpha1.AnalysisPassed},
			}}}}
	})

	res := run(ctx, k8sClient, ns, "status", "web")

	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(MatchRegexp(`(?m)^Phase:\s+Verifying, group 0 of 3$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^Traffic steps:$`))
	g.Expect(res.Out).To(MatchRegexp(`(?m)^  0\s+10% to web-canary\s+2026-08-01T10:00:00Z\s+-\s+-\s+1/0/2\s+success-rate=0.998 \(Passed\)$`))
}

func TestConfirmOverrideAnalysisSetsTheGroupAndReason(t *testing.T) {
	ctx, g, ns, cd := webTest(t)
	writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) {
		waitingAt(cd, 0, 3)(st)
		st.Release.Phase = cafev1alpha1.ReleasePhaseFailed
	})

	res := run(ctx, k8sClient, ns, "confirm", "web", "--override-analysis")
	g.Expect(res.Err).To(MatchError(ContainSubstring("--reason: Required value")))

	res = run(ctx, k8sClient, ns, "confirm", "web", "--override-analysis", "--reason", "INC-4711: the probe is wrong")
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.Out).To(ContainSubstring("overrode the analysis of group 0 of CafeDeployment " + ns + "/web"))
	// No webhook runs here: nothing stamps who, and the command says so.
	g.Expect(res.ErrOut).To(ContainSubstring("the server recorded no cafe.io/analysis-overridden-by"))
	got := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cd), got)).To(Succeed())
	g.Expect(got.Annotations).To(HaveKeyWithValue(cafev1alpha1.OverrideAnalysisGroupAnnotation, "0"))
	g.Expect(got.Annotations).To(HaveKeyWithValue(cafev1alpha1.OverrideAnalysisReasonAnnotation, "INC-4711: the probe is wrong"))
	g.Expect(got.Annotations).NotTo(HaveKey(cafev1alpha1.ConfirmGroupAnnotation), "an override is not a confirmation")

	writeStatus(ctx, g, cd, func(st *cafev1alpha1.CafeDeploymentStatus) { st.Release.Phase = cafev1alpha1.ReleasePhaseProgressing })
	res = run(ctx, k8sClient, ns, "confirm", "web", "--override-analysis", "--reason", "x")
	g.Expect(res.Err).To(MatchError(ContainSubstring("is not verifying a traffic step (phase Progressing")))
}
