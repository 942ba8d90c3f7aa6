package releaseorder

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/internal/seal"
)

// world plays the apps for decide: what each app publishes and how its
// release stands. publish mimics the effects and the app controller.
type world struct {
	apps map[string]appObservation
}

func newWorld(names ...string) *world {
	w := &world{apps: map[string]appObservation{}}
	for _, n := range names {
		w.apps[n] = appObservation{Exists: true, Published: n + "-r1", StatusPublished: n + "-r1", Generation: 1, ObservedGeneration: 1, Ready: true,
			Outcomes: map[string]cafev1alpha1.ReleaseOutcome{n + "-r1": cafev1alpha1.ReleaseOutcomeSucceeded}}
	}
	return w
}

// effects does what applyEffects would: publish what the status asks.
func (w *world) effects(o *cafev1alpha1.ReleaseOrder) {
	for _, st := range o.Status.Apps {
		v := w.apps[st.Name]
		switch {
		case st.Phase == cafev1alpha1.AppPublishing && v.Published == st.FromRevision:
			v.Published, v.Generation = st.ToRevision, v.Generation+1
			v.Outcomes[st.ToRevision] = cafev1alpha1.ReleaseOutcomeReleasing
			v.Ready = false
		case st.Phase == cafev1alpha1.AppRollingBack && v.Published != st.FromRevision:
			v.Published, v.Generation = st.FromRevision, v.Generation+1
			v.Outcomes[st.FromRevision] = cafev1alpha1.ReleaseOutcomeReleasing
			v.Ready = false
		}
		w.apps[st.Name] = v
	}
}

// finish makes the app controller observe the app and its release end.
func (w *world) finish(name string, outcome cafev1alpha1.ReleaseOutcome) {
	v := w.apps[name]
	v.ObservedGeneration, v.StatusPublished = v.Generation, v.Published
	v.Outcomes[v.Published] = outcome
	v.Ready = outcome == cafev1alpha1.ReleaseOutcomeSucceeded
	w.apps[name] = v
}

// observe makes the app controller observe the publish, release running.
func (w *world) observe(name string) {
	v := w.apps[name]
	v.ObservedGeneration, v.StatusPublished = v.Generation, v.Published
	v.ReleasePhase, v.TotalGroups = cafev1alpha1.ReleasePhaseProgressing, 3
	w.apps[name] = v
}

type run struct {
	t      *testing.T
	o      *cafev1alpha1.ReleaseOrder
	w      *world
	now    time.Time
	signer audit.Signer
	seals  seal.Key
	seq    int
}

func newRun(t *testing.T, policy cafev1alpha1.FailurePolicy) *run {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weekly", Generation: 1, CreationTimestamp: metav1.NewTime(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))},
		Spec: cafev1alpha1.ReleaseOrderSpec{
			Title: "weekly", RequestedBy: "alice", Apps: chain, FailurePolicy: policy,
			Approval: cafev1alpha1.ReleaseApproval{Required: ptr.To[int32](2)}, ProgressDeadlineSeconds: ptr.To[int32](600),
		},
	}
	seals := seal.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	o.Spec.Seal = seals.Order(o.Namespace, o.Spec)
	return &run{t: t, o: o, w: newWorld("a", "b", "c", "d"), now: o.CreationTimestamp.Time, signer: audit.Signer{Key: key}, seals: seals}
}

// newStartedRun is newRun with one approval required, which bob gives
// before he starts the order, and one step more: the first apps publish.
func newStartedRun(t *testing.T, policy cafev1alpha1.FailurePolicy) *run {
	r := newRun(t, policy)
	r.o.Spec.Approval.Required = ptr.To[int32](1)
	r.reseal()
	r.step(r.action("bob", cafev1alpha1.ActionApprove))
	r.step(r.action("bob", cafev1alpha1.ActionStart))
	r.step()
	return r
}

// reseal seals the order's spec again after a test changed it, as the
// webhook would have sealed the spec the test means.
func (r *run) reseal() { r.o.Spec.Seal = r.seals.Order(r.o.Namespace, r.o.Spec) }

// step runs decide with the actions, then the effects.
func (r *run) step(actions ...cafev1alpha1.ReleaseAction) orderDecision {
	r.now = r.now.Add(10 * time.Second)
	d := decide(r.o, actions, r.w.apps, r.now, func(tr []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
		return r.signer.Append(audit.SubjectOf(r.o), tr, e)
	}, orderRules{Identity: r.seals})
	r.w.effects(r.o)
	return d
}

// action is an action as CAFE's admission webhook leaves it: stamped,
// admitted after the previous one, sealed.
func (r *run) action(actor string, a cafev1alpha1.ReleaseActionType) cafev1alpha1.ReleaseAction {
	r.seq++
	act := cafev1alpha1.ReleaseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: "act-" + string(rune('a'+r.seq)), CreationTimestamp: metav1.NewTime(r.now)},
		Spec: cafev1alpha1.ReleaseActionSpec{Order: r.o.Name, Action: a, Actor: actor,
			AdmittedAt: ptr.To(metav1.NewMicroTime(r.now.Add(time.Duration(r.seq) * time.Microsecond)))},
	}
	act.Spec.Seal = r.seals.Action(act.Namespace, act.Spec)
	return act
}

func (r *run) phases() map[string]cafev1alpha1.ReleaseOrderAppPhase { return phases(r.o.Status.Apps) }

func TestDecideReleasesInDependencyOrderAndRollsEverythingBackInReverse(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailureRollbackAll)
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval))

	// Four eyes: the requester's approval is refused; two others approve.
	r.step(r.action("alice", cafev1alpha1.ActionApprove), r.action("bob", cafev1alpha1.ActionApprove), r.action("bob", cafev1alpha1.ActionApprove))
	g.Expect(r.o.Status.Actions).To(HaveLen(3))
	g.Expect(r.o.Status.Actions[0].Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(r.o.Status.Actions[0].Message).To(ContainSubstring("cannot approve"))
	g.Expect(r.o.Status.Actions[2].Message).To(ContainSubstring("already approved"))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval))
	// A start before approval is refused, not ignored.
	r.step(r.action("carol", cafev1alpha1.ActionStart))
	g.Expect(r.o.Status.Actions[3].Result).To(Equal(cafev1alpha1.ActionRefused))
	r.step(r.action("carol", cafev1alpha1.ActionApprove))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderApproved))
	g.Expect(r.o.Status.ApprovalSummary).To(Equal("2/2"))

	r.step(r.action("dave", cafev1alpha1.ActionStart))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderRunning))
	g.Expect(r.phases()).To(Equal(map[string]cafev1alpha1.ReleaseOrderAppPhase{"a": publishing, "b": pending, "c": pending, "d": publishing}))
	g.Expect(r.o.Status.AppStatus("a").FromRevision).To(Equal("a-r1"))
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("a", releasing))
	g.Expect(r.phases()).To(HaveKeyWithValue("d", releasing))

	// a's release is not observed yet: b waits. Then a and d succeed.
	r.w.observe("a")
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("b", pending))
	r.w.finish("a", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.w.finish("d", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.step()
	g.Expect(r.phases()).To(Equal(map[string]cafev1alpha1.ReleaseOrderAppPhase{"a": succeeded, "b": publishing, "c": pending, "d": succeeded}))
	r.step()
	r.w.finish("b", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("c", publishing))
	r.step()
	r.w.observe("c")
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("c", releasing))

	// c makes no progress past the deadline: it fails, RollbackAll.
	r.now = r.now.Add(11 * time.Minute)
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderRollingBack))
	g.Expect(r.phases()).To(Equal(map[string]cafev1alpha1.ReleaseOrderAppPhase{"a": waitingRB, "b": waitingRB, "c": rollingRB, "d": rollingRB}))
	g.Expect(r.w.apps["c"].Published).To(Equal("c-r1"))
	g.Expect(r.w.apps["a"].Published).To(Equal("a-r2"), "a is rolled back only after b")
	r.w.finish("c", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.step()
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("c", rolledBack))
	g.Expect(r.phases()).To(HaveKeyWithValue("b", rollingRB))
	g.Expect(r.phases()).To(HaveKeyWithValue("a", waitingRB))
	r.w.finish("d", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.w.finish("b", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.step()
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("a", rollingRB))
	r.w.finish("a", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.step()
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack))
	for _, n := range []string{"a", "b", "c", "d"} {
		g.Expect(r.w.apps[n].Published).To(Equal(n + "-r1"))
	}

	// The trail is whole and CAFE's; a step that changes nothing adds no
	// entry.
	n := len(r.o.Status.Audit)
	r.step()
	g.Expect(r.o.Status.Audit).To(HaveLen(n))
	subject := audit.SubjectOf(r.o)
	_, p := audit.Verify(audit.Record{Subject: subject, Trail: r.o.Status.Audit, Head: r.signer.Head(subject, r.o.Status.Audit)},
		audit.NewKeyRing(r.signer.Key.Public().(ed25519.PublicKey)))
	g.Expect(p).To(BeNil())
	var actors []string
	for _, e := range r.o.Status.Audit {
		if e.Action == string(cafev1alpha1.ActionApprove) && e.Reason == "" {
			actors = append(actors, e.Actor)
		}
	}
	g.Expect(actors).To(Equal([]string{"bob", "carol"}))
}

func TestDecideWindowKeepsAnOrderScheduledAndPausesItWhenItCloses(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailurePause)
	r.o.Spec.Approval.Required = ptr.To[int32](1)
	start, end := r.now.Add(time.Hour), r.now.Add(2*time.Hour)
	r.o.Spec.Window = &cafev1alpha1.ReleaseWindow{Start: ptr.To(metav1.NewTime(start)), End: ptr.To(metav1.NewTime(end))}
	r.reseal()
	r.step(r.action("bob", cafev1alpha1.ActionApprove))
	d := r.step(r.action("carol", cafev1alpha1.ActionStart))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderScheduled))
	g.Expect(d.RequeueAfter).To(BeNumerically("~", start.Sub(r.now), time.Second))
	g.Expect(r.phases()).To(HaveKeyWithValue("a", pending))

	r.now = start
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderRunning))
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("a", releasing))

	r.now = end
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPaused))
	g.Expect(r.o.Status.Message).To(ContainSubstring("window closed"))
	g.Expect(r.o.Status.AppStatus("a").Held).To(BeTrue())
	// Resuming outside the window is refused.
	r.step(r.action("carol", cafev1alpha1.ActionResume))
	g.Expect(r.o.Status.Actions[len(r.o.Status.Actions)-1].Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPaused))
}

func TestDecideRollbackFailedRollsBackOnlyTheFailedAppAndFailsTheOrder(t *testing.T) {
	g := NewWithT(t)
	r := newStartedRun(t, cafev1alpha1.FailureRollbackFailed)
	r.w.finish("a", cafev1alpha1.ReleaseOutcomeFailed)
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("a", rollingRB))
	g.Expect(r.phases()).To(HaveKeyWithValue("d", releasing), "d is not rolled back")
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderRunning))
	r.w.finish("a", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.w.finish("d", cafev1alpha1.ReleaseOutcomeSucceeded)
	r.step()
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderFailed))
	g.Expect(r.phases()).To(Equal(map[string]cafev1alpha1.ReleaseOrderAppPhase{"a": rolledBack, "b": pending, "c": pending, "d": succeeded}))
}

func TestDecideRefusesActionsInTheWrongPhaseAndWithoutAnActor(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailurePause)
	r.step(r.action("", cafev1alpha1.ActionApprove), r.action("bob", cafev1alpha1.ActionPause), r.action("bob", cafev1alpha1.ActionReject))
	g.Expect(r.o.Status.Actions[0].Message).To(ContainSubstring("no spec.actor"))
	g.Expect(r.o.Status.Actions[1].Message).To(ContainSubstring("Pause is not allowed while the order is PendingApproval"))
	g.Expect(r.o.Status.Actions[2].Result).To(Equal(cafev1alpha1.ActionAccepted))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderCancelled))
	// Processed actions are never processed again.
	again := r.o.DeepCopy()
	r.step(cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Name: r.o.Status.Actions[2].Name}, Spec: cafev1alpha1.ReleaseActionSpec{Action: cafev1alpha1.ActionReject, Actor: "bob"}})
	g.Expect(r.o.Status.Audit).To(HaveLen(len(again.Status.Audit)))
}

// F9: a person who confirms, asks for a fast release or changes the
// strategy of an app directly, while an order releases it, is in the
// order's trail under their authenticated name, once.
func TestSecurityF9_OutsideChangesAreInTheOrdersTrail(t *testing.T) {
	g := NewWithT(t)
	r := newStartedRun(t, cafev1alpha1.FailurePause)
	g.Expect(r.phases()).To(HaveKeyWithValue("a", releasing))
	r.w.observe("a")
	v := r.w.apps["a"]
	v.OutsideChanges = []outsideChange{
		{What: "confirmed the waiting group", By: "mallory", At: r.now.Add(time.Second)},
		{What: "the controller's own", By: ControllerActor, At: r.now.Add(2 * time.Second)},
		{What: "before the order", By: "old", At: r.now.Add(-time.Hour)},
	}
	r.w.apps["a"] = v
	r.step()
	r.step()
	var outside []string
	for _, e := range r.o.Status.Audit {
		if e.Action == "OutsideChange" {
			outside = append(outside, e.Actor+": "+e.Reason)
		}
	}
	g.Expect(outside).To(Equal([]string{"mallory: confirmed the waiting group directly, not through the order"}))
}

// F3b/issue item 3: a rollback that makes no progress ends the order
// (Failed, with the reason in the app's message) instead of leaving it
// RollingBack for as long as anyone waits.
func TestSecurityF3b_StalledRollbackEndsTheOrder(t *testing.T) {
	g := NewWithT(t)
	r := newStartedRun(t, cafev1alpha1.FailureRollbackAll)
	r.w.finish("a", cafev1alpha1.ReleaseOutcomeFailed)
	r.step()
	r.step()
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderRollingBack))
	g.Expect(r.phases()).To(HaveKeyWithValue("a", rollingRB))
	// The rollback is published but its release never moves.
	d := r.step()
	g.Expect(d.RequeueAfter).To(BeNumerically(">", 0), "the deadline wakes the order")
	r.now = r.now.Add(r.o.ProgressDeadline())
	r.step()
	r.step()
	g.Expect(r.o.Status.AppStatus("a").Phase).To(Equal(cafev1alpha1.AppFailed))
	g.Expect(r.o.Status.AppStatus("a").Message).To(ContainSubstring("rolling back to a-r1: no progress for 10m0s"))
	g.Expect(r.o.Status.Phase.IsFinished()).To(BeTrue(), "phase %s", r.o.Status.Phase)
}

// Past MaxAuditedActions a refused Cancel is recorded in status.actions
// only (a burst of them must not fill the trail); the Cancel that ends
// the order is still audited.
func TestDecidePastTheActionCapOnlyTheCancelThatEndsTheOrderIsAudited(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailurePause)
	r.step()
	var acts []cafev1alpha1.ReleaseAction
	for range cafev1alpha1.MaxAuditedActions {
		acts = append(acts, r.action("bob", cafev1alpha1.ActionStart))
	}
	for r.o.Status.ActionsProcessed() < len(acts) {
		r.step(acts...)
	}
	n := len(r.o.Status.Audit)
	forged := r.action("carol", cafev1alpha1.ActionCancel)
	forged.Spec.Seal = "forged"
	acts = append(acts, forged)
	r.step(acts...)
	last := r.o.Status.Actions[len(r.o.Status.Actions)-1]
	g.Expect(last.Name).To(Equal(forged.Name))
	g.Expect(last.Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(r.o.Status.Audit).To(HaveLen(n))

	acts = append(acts, r.action("alice", cafev1alpha1.ActionCancel))
	r.step(acts...)
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderCancelled))
	g.Expect(len(r.o.Status.Audit)).To(BeNumerically(">", n))
}

// An action that reaches the controller after later ones were processed is
// refused as late; its record, older than the records around it, must not
// make the actions compacted before it look unprocessed (CI once counted
// 561 processed actions for a burst of 300).
func TestDecideALateActionIsProcessedOnceAndCompactionTakesNothingTwice(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailurePause)
	r.step()
	const n = 200
	var acts []cafev1alpha1.ReleaseAction
	for range n {
		acts = append(acts, r.action("bob", cafev1alpha1.ActionStart))
	}
	// The second action reaches the cache only after the first batch.
	r.step(append(acts[:1:1], acts[2:]...)...)
	for range 3 * n / actionsPerReconcile {
		r.step(acts...)
	}
	g.Expect(r.o.Status.ActionsProcessed()).To(Equal(n), "every action is processed exactly once")
	g.Expect(r.o.Status.ActionsCompacted).To(BeNumerically(">", 0), "the test must cross a compaction")
	names := map[string]bool{}
	for _, rec := range r.o.Status.Actions {
		g.Expect(names).NotTo(HaveKey(rec.Name), "each action has one record")
		names[rec.Name] = true
	}
	g.Expect(r.o.Status.ActionsCompactedThrough).NotTo(BeNil())
}

// Issue 16: the verdicts on an app's traffic steps are in the order's trail
// once each, with the values the queries gave and the queries; an
// override under the name of the person who gave it; a verdict on a step
// that began before the order published the app is not the order's.
func TestDecideRecordsTrafficVerdictsWithTheirValuesInTheTrail(t *testing.T) {
	g := NewWithT(t)
	r := newStartedRun(t, cafev1alpha1.FailureRollbackFailed)
	r.w.observe("a")
	started := r.o.Status.AppStatus("a").StartedAt.Time
	v := r.w.apps["a"]
	v.Verdicts = []trafficVerdict{
		{Group: 0, Analysis: "success", Split: "10% to a-canary", Verdict: cafev1alpha1.AnalysisPassed, Reason: "3 of 3 measurements passed", Started: started.Add(-time.Hour)},
		{Group: 0, Analysis: "success", Split: "10% to a-canary", Verdict: cafev1alpha1.AnalysisPassed, Reason: "overridden by olga: quiet night (the analysis: Failed)",
			Started: started.Add(time.Second), OverriddenBy: "olga"},
		{Group: 1, Analysis: "success", Split: "20% to a-canary", Verdict: cafev1alpha1.AnalysisFailed, Reason: "success-rate: 0.42, not at least 0.99", Started: started.Add(2 * time.Second),
			Values: []cafev1alpha1.TrafficMetricValue{{Name: "success-rate", Query: `sum(rate(x{service=~"shop-a-canary-.*"}[10s]))`, Value: "0.42", Outcome: cafev1alpha1.AnalysisFailed}}},
	}
	r.w.apps["a"] = v
	r.w.finish("a", cafev1alpha1.ReleaseOutcomeFailed)
	r.step()
	g.Expect(r.phases()).To(HaveKeyWithValue("a", rollingRB), "failurePolicy RollbackFailed")
	r.step()
	var verdicts []cafev1alpha1.AuditEntry
	for _, e := range r.o.Status.Audit {
		if strings.HasPrefix(e.Action, "Analysis") {
			verdicts = append(verdicts, e)
		}
	}
	g.Expect(verdicts).To(HaveLen(2), "each verdict once, the one from before the order not at all")
	g.Expect(verdicts[0].Actor).To(Equal("olga"))
	g.Expect(verdicts[0].Action).To(Equal("AnalysisOverridden"))
	g.Expect(verdicts[0].Reason).To(ContainSubstring("quiet night"))
	failed := verdicts[1]
	g.Expect(failed.Actor).To(Equal(ControllerActor))
	g.Expect(failed.Action).To(Equal("AnalysisFailed"))
	g.Expect(failed.Target).To(Equal("app/a"))
	g.Expect(failed.Before).To(Equal("20% to a-canary"))
	g.Expect(failed.After).To(Equal("group 1: Failed"))
	g.Expect(failed.Reason).To(ContainSubstring("TrafficAnalysis success: success-rate: 0.42, not at least 0.99"))
	g.Expect(failed.Reason).To(ContainSubstring("success-rate = 0.42 (Failed)"))
	g.Expect(failed.Reason).To(ContainSubstring(`service=~"shop-a-canary-.*"`), "the query as sent")
}

func TestVerdictSummaryFitsAnEntryAndCutsQueriesFirst(t *testing.T) {
	g := NewWithT(t)
	tv := trafficVerdict{Analysis: "latency", Reason: "p99: 2.5, not at most 0.5", Values: []cafev1alpha1.TrafficMetricValue{
		{Name: "p99", Value: "2.5", Outcome: cafev1alpha1.AnalysisFailed, Query: strings.Repeat("q", 2000)},
	}}
	s := verdictSummary(tv)
	g.Expect(len(s)).To(BeNumerically("<=", 1024))
	g.Expect(s).To(Equal("TrafficAnalysis latency: p99: 2.5, not at most 0.5; last measurement: p99 = 2.5 (Failed)"))
}
