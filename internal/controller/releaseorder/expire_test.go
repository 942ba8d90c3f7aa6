package releaseorder

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
)

const idle = 72 * time.Hour

// stepAt runs decide at t under an idle timeout, then the effects.
func (r *run) stepAt(t time.Time, timeout time.Duration, actions ...cafev1alpha1.ReleaseAction) orderDecision {
	r.now = t
	d := decide(r.o, actions, r.w.apps, r.now, func(tr []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
		return r.signer.Append(audit.SubjectOf(r.o), tr, e)
	}, orderRules{Identity: r.seals, IdleTimeout: timeout})
	r.w.effects(r.o)
	return d
}

// An order nobody approves would hold its apps against every other order
// for ever: it expires, reason Expired, into Cancelled, recorded in the
// trail; each action pushes the expiry back.
func TestAnOrderNobodyActsOnExpiresAndFreesItsApps(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailurePause)
	created := r.o.CreationTimestamp.Time
	d := r.stepAt(created.Add(time.Second), idle)
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval))
	g.Expect(d.RequeueAfter).To(BeNumerically("~", idle, time.Second), "woken when it expires")

	// One approval of two at 50 h: the clock starts again there.
	approvedAt := created.Add(50 * time.Hour)
	r.stepAt(approvedAt, idle, r.action("bob", cafev1alpha1.ActionApprove))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval))
	d = r.stepAt(created.Add(100*time.Hour), idle)
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval), "an action resets the idle clock")
	g.Expect(d.RequeueAfter).To(BeNumerically("~", approvedAt.Add(idle).Sub(r.now), time.Second))
	g.Expect(r.o.HoldsApps()).To(BeTrue())

	r.stepAt(approvedAt.Add(idle), idle)
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderCancelled))
	g.Expect(r.o.Status.Message).To(ContainSubstring("expired: nobody acted on the order (PendingApproval) since " + approvedAt.UTC().Format(time.RFC3339)))
	g.Expect(r.o.Status.FinishedAt).NotTo(BeNil())
	g.Expect(r.o.HoldsApps()).To(BeFalse(), "an expired order no longer holds its apps")
	last := r.o.Status.Audit[len(r.o.Status.Audit)-1]
	g.Expect(last.Actor).To(Equal(ControllerActor))
	g.Expect(last.After).To(Equal(string(cafev1alpha1.OrderCancelled)))
	g.Expect(last.Reason).To(HavePrefix(cafev1alpha1.OrderReasonExpired + ": "))
	for _, p := range r.phases() {
		g.Expect(p).To(Equal(cafev1alpha1.AppPending), "no app was touched")
	}
}

// A held release waits for a person's decision by design: an order that
// changed an app never expires, nor does any order without an idle timeout.
func TestOrdersThatChangedAnAppOrRunWithoutATimeoutNeverExpire(t *testing.T) {
	g := NewWithT(t)
	r := newRun(t, cafev1alpha1.FailurePause)
	start := r.o.CreationTimestamp.Time.Add(time.Minute)
	r.stepAt(start, idle, r.action("bob", cafev1alpha1.ActionApprove), r.action("carol", cafev1alpha1.ActionApprove))
	r.stepAt(start.Add(time.Second), idle, r.action("dave", cafev1alpha1.ActionStart))
	r.stepAt(start.Add(2*time.Second), idle)
	g.Expect(r.phases()).To(HaveKeyWithValue("a", cafev1alpha1.AppReleasing))
	r.stepAt(start.Add(3*time.Second), idle, r.action("dave", cafev1alpha1.ActionPause))
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPaused))
	d := r.stepAt(start.Add(1000*time.Hour), idle)
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPaused))
	g.Expect(d.RequeueAfter).To(BeZero(), "nothing is due")

	r = newRun(t, cafev1alpha1.FailurePause)
	r.stepAt(r.o.CreationTimestamp.Add(1000*time.Hour), 0)
	g.Expect(r.o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval), "no idle timeout: never expires")
}
