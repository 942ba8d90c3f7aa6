package releaseorder

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// ControllerActor is the actor of the audit entries of changes the
// controller makes on its own: CAFE's ServiceAccount, an identity no
// person is given, and one CAFE's webhooks refuse orders and actions from.
const ControllerActor = cafev1alpha1.ControllerIdentity

// appObservation is what the controller reads about one app of an order: the
// CafeAppService, the outcomes of the order's revisions and the release of
// its CafeDeployment.
type appObservation struct {
	// Exists is false when the CafeAppService is gone.
	Exists bool
	// Published is spec.publishedRevision; Generation the app's generation.
	Published  string
	Generation int64
	// ObservedGeneration and StatusPublished are from the app's status.
	ObservedGeneration int64
	StatusPublished    string
	// Ready is the app's Ready condition, computed from its generation.
	Ready bool
	// Outcomes are the release outcomes of the revisions the order names
	// (to and from), by revision name.
	Outcomes map[string]cafev1alpha1.ReleaseOutcome
	// Strategy is the part of the app's strategy an order may override.
	Strategy cafev1alpha1.ReleaseOrderAppStrategy

	// From the CafeDeployment (zero when it does not exist).
	ReleasePhase cafev1alpha1.ReleasePhase
	CurrentGroup int32
	TotalGroups  int32
	GroupsDone   int32
	Updated      int32
	// WaitingGroup is the group the release waits to have confirmed.
	WaitingGroup *int32
	// Paused is spec.strategy.pause.
	Paused bool
	// OutsideChanges are the changes to the app or its CafeDeployment
	// that CAFE's webhooks stamped with their author.
	OutsideChanges []outsideChange
	// Members are the app's pods and classic instances, read only once
	// its CafeDeployment's release has completed (for the audit trail).
	Members []appMember
	// Verdicts are the traffic analyses' verdicts of the CafeDeployment's
	// release, one per group whose step has one.
	Verdicts []trafficVerdict
}

// trafficVerdict is the verdict on one group's traffic step, as the
// CafeDeployment's status records it.
type trafficVerdict struct {
	Group int32
	// Analysis names the step's TrafficAnalysis (empty when a person
	// passed a step without one).
	Analysis, Split string
	Verdict         cafev1alpha1.AnalysisOutcome
	Reason          string
	// Started is when the step began.
	Started time.Time
	// OverriddenBy is the authenticated user who overrode the analysis.
	OverriddenBy string
	// Values are the metrics of the step's last measurement.
	Values []cafev1alpha1.TrafficMetricValue
}

// appMember is one pod or classic instance of an app, as the audit trail
// lists it.
type appMember struct {
	// Kind is "pod" or "classic instance".
	Kind, Name string
	// Revision is the app revision it runs (its cafe.io/app-revision
	// label); Place its node or classic host.
	Revision, Place string
}

// outsideChange is a change to an app made by a person directly, as its
// stamp annotations record it.
type outsideChange struct {
	What, By string
	At       time.Time
}

// observes reports whether the app's status describes the state after the
// order's publish of rev (recorded at generation gen).
func (v appObservation) observes(rev string, gen int64) bool {
	return v.Exists && gen > 0 && v.Published == rev && v.StatusPublished == rev && v.ObservedGeneration >= gen
}

// waiting reports whether the release waits for a person: a confirmation
// or a pause. The progress deadline does not run meanwhile.
func (v appObservation) waiting() bool {
	return v.WaitingGroup != nil || v.ReleasePhase == cafev1alpha1.ReleasePhasePaused || v.Paused
}

// Signer appends a signed entry to an audit trail (audit.Signer.Append).
type Signer func(trail []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry

// Observation is a measurement to report once the status that produced it
// is written.
type Observation struct {
	// Kind is "finished", "approved", "confirmed" or "rollback".
	Kind     string
	Outcome  cafev1alpha1.ReleaseOrderPhase
	Duration time.Duration
	App      string
}

// orderDecision is what decide changed besides the status.
type orderDecision struct {
	// RequeueAfter is when time alone changes something (window, deadline,
	// retention); zero when nothing is due.
	RequeueAfter time.Duration
	Observations []Observation
}

// decide advances the order one step from its status, its actions (the
// ones not processed yet are taken in the order they were admitted, a
// bounded number at a time), what the apps look like and the time, under
// rules (identity seals, the cluster's approval policy). It changes
// o.Status only, appending one signed audit entry per state change and per
// action, so that the status write that records a change records its audit
// entry too. It writes nothing else: the effects on apps follow from the
// resulting status (see Reconciler.applyEffects).
func decide(o *cafev1alpha1.ReleaseOrder, actions []cafev1alpha1.ReleaseAction, apps map[string]appObservation, now time.Time, sign Signer, rules orderRules) orderDecision {
	d := &decider{o: o, apps: apps, now: now, sign: sign, rules: rules}
	d.initialize()
	d.checkRequester()
	pending, more := pendingActions(o, actions, rules.Identity)
	for _, a := range pending {
		d.process(a)
	}
	if more {
		d.requeueAt(now)
	}
	d.compactActions()
	d.enforceWindow()
	d.expireIdle()
	d.observeApps()
	d.startApps()
	d.applyFailurePolicy()
	d.progressRollbacks()
	d.complete()
	d.summarize()
	return d.out
}

type decider struct {
	o     *cafev1alpha1.ReleaseOrder
	apps  map[string]appObservation
	now   time.Time
	sign  Signer
	rules orderRules
	// requesterUnverified says why the order's requester is not trusted
	// (nil: it is): such an order takes no approval.
	requesterUnverified error
	out                 orderDecision
}

func (d *decider) nowTime() metav1.Time { return metav1.NewTime(d.now.UTC().Truncate(time.Second)) }

func (d *decider) requeueAt(t time.Time) {
	after := t.Sub(d.now)
	if after <= 0 {
		after = time.Second
	}
	if d.out.RequeueAfter == 0 || after < d.out.RequeueAfter {
		d.out.RequeueAfter = after
	}
}

func (d *decider) audit(actor, action, target, before, after, reason string) {
	d.auditBy(actor, nil, action, target, before, after, reason)
}

// auditBy records a human action with the actor's authenticated groups.
func (d *decider) auditBy(actor string, groups []string, action, target, before, after, reason string) {
	d.o.Status.Audit = d.sign(d.o.Status.Audit, cafev1alpha1.AuditEntry{
		Time: metav1.NewMicroTime(d.now), Actor: truncate(actor, 256), ActorGroups: groups, Action: action, Target: truncate(target, 256),
		Before: truncate(before, 256), After: truncate(after, 256), Reason: truncate(reason, 1024),
	})
}

// auditMembers records which pods and classic instances run the app once
// its release (or rollback) to rev is done: the audit trail names every
// kind of instance the order changed.
func (d *decider) auditMembers(app *cafev1alpha1.ReleaseOrderAppStatus, rev string, members []appMember) {
	d.audit(ControllerActor, "Instances", "app/"+app.Name, "", rev, membersSummary(members))
}

// membersSummary lists the members by kind, each as name (revision, place),
// within the 1,024 characters of an entry's reason: what does not fit is
// counted ("… and 3 more").
func membersSummary(members []appMember) string {
	byKind := map[string][]appMember{}
	var kinds []string
	for _, m := range members {
		if byKind[m.Kind] == nil {
			kinds = append(kinds, m.Kind)
		}
		byKind[m.Kind] = append(byKind[m.Kind], m)
	}
	slices.Sort(kinds)
	var heads, items []string
	for _, k := range kinds {
		ms := byKind[k]
		slices.SortFunc(ms, func(a, b appMember) int { return strings.Compare(a.Name, b.Name) })
		heads = append(heads, fmt.Sprintf("%d %s", len(ms), plural(k, len(ms))))
		for _, m := range ms {
			items = append(items, fmt.Sprintf("%s %s (%s on %s)", k, m.Name, orDash(m.Revision), orDash(m.Place)))
		}
	}
	if len(members) == 0 {
		return "no pod or classic instance found"
	}
	out := strings.Join(heads, ", ") + ": "
	const limit = 1024
	for i, item := range items {
		more := fmt.Sprintf(" … and %d more", len(items)-i)
		sep := ""
		if i > 0 {
			sep = "; "
		}
		if len(out)+len(sep)+len(item)+len(more) > limit && i < len(items)-1 || len(out)+len(sep)+len(item) > limit {
			return out + more
		}
		out += sep + item
	}
	return out
}

func plural(noun string, n int) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

func (d *decider) orderTarget() string { return "releaseorder/" + d.o.Name }

// setPhase moves the order to p and records it.
func (d *decider) setPhase(p cafev1alpha1.ReleaseOrderPhase, actor, reason, msg string) {
	st := &d.o.Status
	before := st.Phase
	st.Message = truncate(msg, 1024)
	d.setProgressing(p, reason, msg)
	if before == p {
		return
	}
	st.Phase = p
	if actor == "" {
		actor = ControllerActor
	}
	d.audit(actor, "OrderPhase", d.orderTarget(), string(before), string(p), reason+": "+msg)
	if p.IsFinished() {
		st.FinishedAt = ptr.To(d.nowTime())
		var dur time.Duration
		if st.StartedAt != nil {
			dur = d.now.Sub(st.StartedAt.Time)
		}
		d.out.Observations = append(d.out.Observations, Observation{Kind: "finished", Outcome: p, Duration: dur})
	}
}

func (d *decider) setProgressing(p cafev1alpha1.ReleaseOrderPhase, reason, msg string) {
	status := metav1.ConditionFalse
	if p == cafev1alpha1.OrderRunning || p == cafev1alpha1.OrderRollingBack {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&d.o.Status.Conditions, metav1.Condition{
		Type: cafev1alpha1.OrderProgressingCondition, Status: status, Reason: reason, Message: truncate(msg, 1024),
		ObservedGeneration: d.o.Generation, LastTransitionTime: d.nowTime(),
	})
}

// setAppPhase moves one app to p and records it.
func (d *decider) setAppPhase(a *cafev1alpha1.ReleaseOrderAppStatus, p cafev1alpha1.ReleaseOrderAppPhase, msg string) {
	before := a.Phase
	a.Phase = p
	a.Message = truncate(msg, 1024)
	if before != p {
		d.audit(ControllerActor, "AppPhase", "app/"+a.Name, string(before), string(p), msg)
	}
}

// initialize gives a new order its first status.
func (d *decider) initialize() {
	st := &d.o.Status
	if st.Phase != "" {
		return
	}
	for _, a := range d.o.Spec.Apps {
		if st.AppStatus(a.Name) == nil {
			st.Apps = append(st.Apps, cafev1alpha1.ReleaseOrderAppStatus{Name: a.Name, Phase: cafev1alpha1.AppPending, ToRevision: a.Revision})
		}
	}
	actor := d.o.Spec.RequestedBy
	reason, msg := cafev1alpha1.OrderReasonPendingApproval, fmt.Sprintf("waiting for %d approval(s)", d.o.RequiredApprovalsUnder(d.rules.Approval))
	if actor == "" {
		actor = "unknown"
		reason, msg = cafev1alpha1.OrderReasonNoRequester, "no requester was recorded (CAFE's admission webhook did not stamp spec.requestedBy), so the order cannot be approved; create it again with the webhook installed"
	}
	d.auditBy(actor, d.o.Spec.RequestedByGroups, "Create", d.orderTarget(), "", string(cafev1alpha1.OrderPendingApproval),
		truncate(fmt.Sprintf("%s (ticket %s): %s", d.o.Spec.Title, orDash(d.o.Spec.ChangeTicket), appList(d.o.Spec.Apps)), 1024))
	st.Phase = cafev1alpha1.OrderPendingApproval
	st.Message = msg
	d.setProgressing(st.Phase, reason, msg)
}

// checkRequester verifies the seal of the order's requester stamp, and
// says on a pending order why it cannot be approved when it does not.
func (d *decider) checkRequester() {
	o, st := d.o, &d.o.Status
	if o.Spec.RequestedBy == "" {
		return
	}
	if err := d.rules.Identity.VerifyOrder(o.Namespace, o.Spec); err != nil {
		d.requesterUnverified = fmt.Errorf("the order's requester %q is %w", o.Spec.RequestedBy, err)
	}
	if d.requesterUnverified != nil && st.Phase == cafev1alpha1.OrderPendingApproval {
		msg := d.requesterUnverified.Error() + "; it cannot be approved: cancel it and create it again with CAFE's webhooks installed"
		st.Message = truncate(msg, 1024)
		d.setProgressing(st.Phase, cafev1alpha1.OrderReasonIdentityUnverified, msg)
	}
}

// process applies one action, exactly once: its record in status.actions
// is written with its effect, and its audit entry while the trail takes
// actions (a Cancel that ends the order always has one; a refused one,
// past that, only its record: else a burst of refused Cancels would fill
// the trail the cap protects).
func (d *decider) process(a pendingAction) {
	st := &d.o.Status
	before := st.Phase
	audited := d.auditsActions()
	err := d.refusal(a)
	if err == nil {
		err = d.apply(a.ReleaseAction)
	}
	actor, groups := a.Spec.Actor, a.Spec.ActorGroups
	if a.unsealed != nil {
		// A name that was not authenticated is not recorded as an actor.
		actor, groups = "", nil
	}
	rec := cafev1alpha1.ReleaseActionRecord{Name: a.Name, Action: a.Spec.Action, Actor: actor, Time: d.nowTime(), AdmittedAt: ptr.To(a.at), Result: cafev1alpha1.ActionAccepted}
	target := d.orderTarget()
	if a.Spec.App != "" {
		target = "app/" + a.Spec.App
	}
	switch {
	case err != nil:
		rec.Result, rec.Message = cafev1alpha1.ActionRefused, truncate(err.Error(), 1024)
		if audited {
			d.auditBy(orUnknown(actor), groups, string(a.Spec.Action), target, string(before), string(st.Phase),
				truncate("refused: "+err.Error()+commentSuffix(a.Spec.Comment), 1024))
		}
	default:
		d.auditBy(actor, groups, string(a.Spec.Action), target, string(before), string(st.Phase), truncate(a.Spec.Comment, 1024))
	}
	st.Actions = append(st.Actions, rec)
}

func (d *decider) apply(a *cafev1alpha1.ReleaseAction) error {
	o, st := d.o, &d.o.Status
	actor := a.Spec.Actor
	if actor == "" {
		return fmt.Errorf("the action has no spec.actor: CAFE's admission webhook did not record who asked")
	}
	if err := cafev1alpha1.ActionAllowedIn(a.Spec.Action, st.Phase); err != nil {
		return err
	}
	switch a.Spec.Action {
	case cafev1alpha1.ActionApprove:
		if d.requesterUnverified != nil {
			return d.requesterUnverified
		}
		if err := o.CheckApprover(actor, a.Spec.ActorGroups, d.rules.Approval); err != nil {
			return err
		}
		st.Approvals = append(st.Approvals, cafev1alpha1.ReleaseApprovalRecord{User: actor, Time: d.nowTime(), Comment: a.Spec.Comment, Action: a.Name})
		if len(st.Approvals) >= o.RequiredApprovalsUnder(d.rules.Approval) {
			st.ApprovedAt = ptr.To(d.nowTime())
			d.out.Observations = append(d.out.Observations, Observation{Kind: "approved", Duration: d.now.Sub(o.CreationTimestamp.Time)})
			d.setPhase(cafev1alpha1.OrderApproved, actor, cafev1alpha1.OrderReasonNotStarted,
				fmt.Sprintf("approved by %s; start it with: cafe release start %s", approvers(st.Approvals), o.Name))
		}
	case cafev1alpha1.ActionReject:
		d.setPhase(cafev1alpha1.OrderCancelled, actor, cafev1alpha1.OrderReasonRejected, fmt.Sprintf("rejected by %s%s", actor, commentSuffix(a.Spec.Comment)))
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: cafev1alpha1.OrderApprovedCondition, Status: metav1.ConditionFalse,
			Reason: cafev1alpha1.OrderReasonRejected, Message: "rejected by " + actor, ObservedGeneration: o.Generation, LastTransitionTime: d.nowTime()})
	case cafev1alpha1.ActionStart:
		if _, _, closed := o.WindowState(d.now); closed {
			return fmt.Errorf("the order's window closed at %s: cancel it and create a new order with a new window", o.Spec.Window.End.UTC().Format(time.RFC3339))
		}
		st.StartedBy, st.StartedAt = actor, ptr.To(d.nowTime())
		d.setPhase(cafev1alpha1.OrderScheduled, actor, cafev1alpha1.OrderReasonWindowNotOpen, "started by "+actor)
		// enforceWindow moves it on to Running when the window is open.
	case cafev1alpha1.ActionPause:
		d.hold(cafev1alpha1.OrderReasonPausedByUser, fmt.Sprintf("paused by %s%s; resume with: cafe release resume %s", actor, commentSuffix(a.Spec.Comment), o.Name), actor)
	case cafev1alpha1.ActionResume:
		if _, _, closed := o.WindowState(d.now); closed {
			return fmt.Errorf("the order's window closed at %s: it cannot run again; roll it back or cancel it", o.Spec.Window.End.UTC().Format(time.RFC3339))
		}
		for i := range st.Apps {
			app := &st.Apps[i]
			if app.Phase == cafev1alpha1.AppFailed && app.RollbackStartedAt == nil {
				app.LastProgressAt, app.Progress = ptr.To(d.nowTime()), ""
				d.setAppPhase(app, cafev1alpha1.AppReleasing, "resumed by "+actor+": given another progress deadline")
			}
		}
		d.setPhase(cafev1alpha1.OrderRunning, actor, cafev1alpha1.OrderReasonReleasing, "resumed by "+actor)
	case cafev1alpha1.ActionConfirm:
		var confirmed []string
		for i := range st.Apps {
			app := &st.Apps[i]
			v := d.apps[app.Name]
			if app.Phase != cafev1alpha1.AppReleasing || v.WaitingGroup == nil || (a.Spec.App != "" && a.Spec.App != app.Name) {
				continue
			}
			app.ConfirmGroup = ptr.To(*v.WaitingGroup)
			confirmed = append(confirmed, fmt.Sprintf("%s group %d", app.Name, *v.WaitingGroup))
			if app.WaitingSince != nil {
				d.out.Observations = append(d.out.Observations, Observation{Kind: "confirmed", App: app.Name, Duration: d.now.Sub(app.WaitingSince.Time)})
			}
		}
		if len(confirmed) == 0 {
			if a.Spec.App != "" {
				return fmt.Errorf("app %s of the order does not wait for a confirmation", a.Spec.App)
			}
			return fmt.Errorf("no app of the order waits for a confirmation")
		}
		st.Message = "confirmed by " + actor + ": " + strings.Join(confirmed, ", ")
	case cafev1alpha1.ActionCancel:
		d.setPhase(cafev1alpha1.OrderCancelled, actor, cafev1alpha1.OrderReasonFinished,
			fmt.Sprintf("cancelled by %s%s; apps not started will not start, apps already published keep their revision (roll back with cafe app rollback)", actor, commentSuffix(a.Spec.Comment)))
	case cafev1alpha1.ActionRollback:
		if !slices.ContainsFunc(st.Apps, func(s cafev1alpha1.ReleaseOrderAppStatus) bool { return changedByOrder(s.Phase) }) {
			return fmt.Errorf("the order has changed no app yet: nothing to roll back (cancel it instead)")
		}
		d.rollbackAll(actor, fmt.Sprintf("rollback asked by %s%s", actor, commentSuffix(a.Spec.Comment)))
	}
	return nil
}

// expireIdle cancels an order that changed no app and that nobody acted
// on for the idle timeout: waiting for an approval, a start or a resume
// that does not come, it would otherwise hold its apps against every other
// order for ever. An order that changed an app is never expired: a held
// release waits for a person's decision by design (resume, rollback,
// cancel). A scheduled order waits for its window, not for a person.
func (d *decider) expireIdle() {
	st := &d.o.Status
	timeout := d.rules.IdleTimeout
	if timeout <= 0 || d.touchedAnApp() {
		return
	}
	switch st.Phase {
	case cafev1alpha1.OrderPendingApproval, cafev1alpha1.OrderApproved, cafev1alpha1.OrderPaused:
	default:
		return
	}
	since := lastActivity(d.o)
	expires := since.Add(timeout)
	if d.now.Before(expires) {
		d.requeueAt(expires)
		return
	}
	d.setPhase(cafev1alpha1.OrderCancelled, "", cafev1alpha1.OrderReasonExpired,
		fmt.Sprintf("expired: nobody acted on the order (%s) since %s, the cluster's idle timeout is %s; no app was changed: create a new order",
			st.Phase, since.UTC().Format(time.RFC3339), timeout))
}

// touchedAnApp reports whether the order started any of its apps.
func (d *decider) touchedAnApp() bool {
	return slices.ContainsFunc(d.o.Status.Apps, func(a cafev1alpha1.ReleaseOrderAppStatus) bool { return a.StartedAt != nil })
}

// lastActivity is when the order was last created, acted on or changed
// phase: the latest of its creation, its last action and its last audit
// entry (every phase change and accepted action has one).
func lastActivity(o *cafev1alpha1.ReleaseOrder) time.Time {
	last := o.CreationTimestamp.Time
	if n := len(o.Status.Audit); n > 0 && o.Status.Audit[n-1].Time.After(last) {
		last = o.Status.Audit[n-1].Time.Time
	}
	if n := len(o.Status.Actions); n > 0 && o.Status.Actions[n-1].Time.After(last) {
		last = o.Status.Actions[n-1].Time.Time
	}
	return last
}

// hold pauses the order: no app starts and the apps under way are held
// before their next pod operation.
func (d *decider) hold(reason, msg, actor string) {
	for i := range d.o.Status.Apps {
		app := &d.o.Status.Apps[i]
		if app.Phase == cafev1alpha1.AppPublishing || app.Phase == cafev1alpha1.AppReleasing {
			app.Held = true
		}
	}
	d.setPhase(cafev1alpha1.OrderPaused, actor, reason, msg)
}

// rollbackAll marks every app the order changed for rollback; they roll
// back in reverse dependency order.
func (d *decider) rollbackAll(actor, msg string) {
	for i := range d.o.Status.Apps {
		app := &d.o.Status.Apps[i]
		if app.Phase == cafev1alpha1.AppFailed && app.PublishedGeneration == 0 && d.apps[app.Name].Published != app.ToRevision {
			// It failed before its revision was published: the order did
			// not change it.
			continue
		}
		if changedByOrder(app.Phase) && app.RollbackStartedAt == nil {
			d.setAppPhase(app, cafev1alpha1.AppWaitingForRollback, "to be rolled back to "+orDash(app.FromRevision)+" once the apps depending on it are")
		}
	}
	d.setPhase(cafev1alpha1.OrderRollingBack, actor, cafev1alpha1.OrderReasonRollingBack, msg+"; rolling back every app the order changed, in reverse dependency order")
}

// enforceWindow starts a scheduled order when its window opens and pauses a
// running one when it closes.
func (d *decider) enforceWindow() {
	o, st := d.o, &d.o.Status
	opensAt, notYetOpen, closed := o.WindowState(d.now)
	switch st.Phase {
	case cafev1alpha1.OrderScheduled:
		switch {
		case notYetOpen:
			d.setPhase(st.Phase, "", cafev1alpha1.OrderReasonWindowNotOpen, fmt.Sprintf("started by %s; the window opens at %s", st.StartedBy, opensAt.UTC().Format(time.RFC3339)))
			d.requeueAt(opensAt)
		case closed:
			d.hold(cafev1alpha1.OrderReasonWindowClosed, fmt.Sprintf("the window closed at %s before the order ran: cancel it and create a new order", o.Spec.Window.End.UTC().Format(time.RFC3339)), "")
		default:
			d.setPhase(cafev1alpha1.OrderRunning, "", cafev1alpha1.OrderReasonReleasing, "the window is open: releasing in dependency order")
		}
	case cafev1alpha1.OrderRunning:
		if closed {
			d.hold(cafev1alpha1.OrderReasonWindowClosed, fmt.Sprintf("the window closed at %s: the apps under way are held before their next pod operation; roll back or cancel the order", o.Spec.Window.End.UTC().Format(time.RFC3339)), "")
		}
	}
	if w := o.Spec.Window; w != nil && w.End != nil && st.Phase == cafev1alpha1.OrderRunning {
		d.requeueAt(w.End.Time)
	}
}

// observeApps follows each started app from what its app and
// CafeDeployment show.
func (d *decider) observeApps() {
	st := &d.o.Status
	for i := range st.Apps {
		app := &st.Apps[i]
		done := app.Phase == cafev1alpha1.AppSucceeded || app.Phase == cafev1alpha1.AppFailed || app.Phase == cafev1alpha1.AppRolledBack
		if orig, ok := originalStrategy(app); app.StrategyOverridden && done && (!ok || sameStrategy(d.apps[app.Name].Strategy, orig)) {
			// The effects gave the app its own strategy back.
			app.StrategyOverridden = false
		}
	}
	if st.Phase.IsFinished() {
		return
	}
	for i := range st.Apps {
		app := &st.Apps[i]
		v := d.apps[app.Name]
		if app.Held && st.Phase != cafev1alpha1.OrderPaused && !v.Paused {
			// The effects released the hold the order had put on the app.
			app.Held = false
		}
		switch app.Phase {
		case cafev1alpha1.AppPublishing:
			switch {
			case !v.Exists:
				d.failApp(app, "CafeAppService "+app.Name+" no longer exists")
			case v.Published == app.ToRevision:
				app.PublishedGeneration = v.Generation
				app.LastProgressAt = ptr.To(d.nowTime())
				d.setAppPhase(app, cafev1alpha1.AppReleasing, "published "+app.ToRevision+" (was "+orDash(app.FromRevision)+")")
			case v.Published != app.FromRevision:
				d.failApp(app, fmt.Sprintf("the app was changed outside the order: %s was published instead of %s", orDash(v.Published), app.ToRevision))
			default:
				d.failIfStalled(app, app.LastProgressAt, "publishing "+app.ToRevision+" (spec.publishedRevision of the app could not be set; see the order's events)", d.failApp)
			}
		case cafev1alpha1.AppReleasing:
			d.recordOutsideChanges(app, v)
			d.observeRelease(app, v)
		case cafev1alpha1.AppRollingBack:
			d.observeRollback(app, v)
		}
	}
}

// recordOutsideChanges writes into the trail, once each, the changes a
// person made directly to an app the order releases: who confirmed a group,
// asked for a fast release or changed the strategy without the order.
func (d *decider) recordOutsideChanges(app *cafev1alpha1.ReleaseOrderAppStatus, v appObservation) {
	changes := slices.Clone(v.OutsideChanges)
	slices.SortFunc(changes, func(a, b outsideChange) int { return a.At.Compare(b.At) })
	for _, c := range changes {
		if c.By == ControllerActor || app.StartedAt == nil || c.At.Before(app.StartedAt.Time) || (app.LastOutsideChange != nil && !c.At.After(app.LastOutsideChange.Time)) {
			continue
		}
		d.audit(c.By, "OutsideChange", "app/"+app.Name, "", "", c.What+" directly, not through the order")
		app.LastOutsideChange = ptr.To(metav1.NewMicroTime(c.At))
	}
}

// recordVerdicts writes into the trail, once each, the verdicts of the
// traffic analyses on the app's release: the value each query gave, and who
// overrode a verdict. Only steps that began after the order published the
// app are the order's.
func (d *decider) recordVerdicts(app *cafev1alpha1.ReleaseOrderAppStatus, v appObservation) {
	if app.StartedAt == nil {
		return
	}
	target := "app/" + app.Name
	for _, tv := range v.Verdicts {
		if tv.Started.Before(app.StartedAt.Time) {
			continue
		}
		actor, action := ControllerActor, "Analysis"+string(tv.Verdict)
		if tv.OverriddenBy != "" {
			actor, action = tv.OverriddenBy, "AnalysisOverridden"
		}
		after := fmt.Sprintf("group %d: %s", tv.Group, tv.Verdict)
		if d.audited(action, target, after, app.StartedAt.Time) {
			continue
		}
		d.audit(actor, action, target, tv.Split, after, verdictSummary(tv))
	}
}

// audited reports whether the trail has an entry of action on target with
// after, written since since.
func (d *decider) audited(action, target, after string, since time.Time) bool {
	return slices.ContainsFunc(d.o.Status.Audit, func(e cafev1alpha1.AuditEntry) bool {
		return e.Action == action && e.Target == target && e.After == after && !e.Time.Time.Before(since)
	})
}

// verdictSummary is a verdict's entry reason: the analysis, its reason and
// the last measurement's values with their queries, within the 1,024
// characters of an entry's reason (queries are cut first).
func verdictSummary(tv trafficVerdict) string {
	head := fmt.Sprintf("TrafficAnalysis %s: %s", orDash(tv.Analysis), tv.Reason)
	var values []string
	for _, m := range tv.Values {
		values = append(values, fmt.Sprintf("%s = %s (%s)", m.Name, orDash(m.Value), m.Outcome))
	}
	out := head
	if len(values) > 0 {
		out += "; last measurement: " + strings.Join(values, ", ")
	}
	for _, m := range tv.Values {
		q := fmt.Sprintf("; %s: %s", m.Name, m.Query)
		if len(out)+len(q) > 1024 {
			break
		}
		out += q
	}
	return out
}

// observeRollback follows an app's rollback to its previous revision. A
// rollback that makes no progress within the progress deadline fails the
// app, so the order ends (Failed) instead of rolling back for ever.
func (d *decider) observeRollback(app *cafev1alpha1.ReleaseOrderAppStatus, v appObservation) {
	switch {
	case !v.Exists:
		d.setAppPhase(app, cafev1alpha1.AppFailed, "CafeAppService "+app.Name+" no longer exists: it cannot be rolled back")
		return
	case v.Published == app.FromRevision && app.PublishedGeneration == 0:
		app.PublishedGeneration = v.Generation
	case app.PublishedGeneration > 0 && v.observes(app.FromRevision, app.PublishedGeneration) && v.Ready && v.Outcomes[app.FromRevision] == cafev1alpha1.ReleaseOutcomeSucceeded:
		app.RolledBackAt = ptr.To(d.nowTime())
		d.setAppPhase(app, cafev1alpha1.AppRolledBack, app.FromRevision+" runs on every pod again")
		d.auditMembers(app, app.FromRevision, v.Members)
		return
	}
	since := app.RollbackStartedAt
	if app.PublishedGeneration > 0 && v.observes(app.FromRevision, app.PublishedGeneration) {
		fp := fmt.Sprintf("rollback/%s/%d/%d/%d", v.ReleasePhase, v.CurrentGroup, v.GroupsDone, v.Updated)
		if fp != app.Progress {
			app.Progress, app.LastProgressAt = fp, ptr.To(d.nowTime())
		}
	}
	if app.LastProgressAt != nil && since != nil && app.LastProgressAt.After(since.Time) {
		since = app.LastProgressAt
	}
	d.failIfStalled(app, since, "rolling back to "+app.FromRevision, func(app *cafev1alpha1.ReleaseOrderAppStatus, msg string) {
		d.setAppPhase(app, cafev1alpha1.AppFailed, msg)
	})
}

// failIfStalled fails the app with fail when nothing has moved since since
// for the order's progress deadline, else asks to be woken at the deadline.
func (d *decider) failIfStalled(app *cafev1alpha1.ReleaseOrderAppStatus, since *metav1.Time, doing string, fail func(*cafev1alpha1.ReleaseOrderAppStatus, string)) {
	if since == nil {
		return
	}
	deadline := since.Add(d.o.ProgressDeadline())
	if d.now.Before(deadline) {
		d.requeueAt(deadline)
		return
	}
	fail(app, fmt.Sprintf("%s: no progress for %s (progressDeadlineSeconds, reason %s)", doing, d.o.ProgressDeadline(), cafev1alpha1.OrderReasonNoProgress))
}

func (d *decider) observeRelease(app *cafev1alpha1.ReleaseOrderAppStatus, v appObservation) {
	if !v.Exists {
		d.failApp(app, "CafeAppService "+app.Name+" no longer exists")
		return
	}
	if v.Published != app.ToRevision {
		d.failApp(app, fmt.Sprintf("the app was changed outside the order: %s was published instead of %s", orDash(v.Published), app.ToRevision))
		return
	}
	if !v.observes(app.ToRevision, app.PublishedGeneration) {
		return
	}
	app.TotalGroups, app.GroupsDone, app.ReleasePhase = v.TotalGroups, v.GroupsDone, string(v.ReleasePhase)
	d.recordVerdicts(app, v)
	if app.ConfirmGroup != nil && (v.WaitingGroup == nil || *v.WaitingGroup != *app.ConfirmGroup) {
		app.ConfirmGroup = nil
	}
	switch {
	case v.Ready && v.Outcomes[app.ToRevision] == cafev1alpha1.ReleaseOutcomeSucceeded:
		app.FinishedAt, app.WaitingSince = ptr.To(d.nowTime()), nil
		d.setAppPhase(app, cafev1alpha1.AppSucceeded, app.ToRevision+" runs on every pod")
		d.auditMembers(app, app.ToRevision, v.Members)
		return
	case v.Outcomes[app.ToRevision] == cafev1alpha1.ReleaseOutcomeFailed:
		d.failApp(app, "the release of "+app.ToRevision+" failed (see cafe app get "+app.Name+")")
		return
	}
	if v.waiting() {
		if app.WaitingSince == nil {
			app.WaitingSince = ptr.To(d.nowTime())
		}
		msg := fmt.Sprintf("group %d of %d waits for a confirmation: cafe release confirm %s", v.CurrentGroup, v.TotalGroups, d.o.Name)
		if v.WaitingGroup == nil {
			msg = "paused"
		}
		app.Message = msg
		return
	}
	if app.WaitingSince != nil {
		app.WaitingSince, app.LastProgressAt = nil, ptr.To(d.nowTime())
	}
	fp := fmt.Sprintf("%s/%d/%d/%d", v.ReleasePhase, v.CurrentGroup, v.GroupsDone, v.Updated)
	if fp != app.Progress || app.LastProgressAt == nil {
		app.Progress, app.LastProgressAt = fp, ptr.To(d.nowTime())
	}
	app.Message = fmt.Sprintf("releasing %s: group %d of %d, %d pods updated", app.ToRevision, v.CurrentGroup, v.TotalGroups, v.Updated)
	deadline := app.LastProgressAt.Add(d.o.ProgressDeadline())
	if !d.now.Before(deadline) {
		d.failApp(app, fmt.Sprintf("no progress for %s (progressDeadlineSeconds): %s", d.o.ProgressDeadline(), app.Message))
		return
	}
	d.requeueAt(deadline)
}

func (d *decider) failApp(app *cafev1alpha1.ReleaseOrderAppStatus, msg string) {
	app.FinishedAt = ptr.To(d.nowTime())
	d.setAppPhase(app, cafev1alpha1.AppFailed, msg)
}

// failingApps are the apps that failed and have not been handled by a
// rollback.
func (d *decider) failingApps() []*cafev1alpha1.ReleaseOrderAppStatus {
	var out []*cafev1alpha1.ReleaseOrderAppStatus
	for i := range d.o.Status.Apps {
		if app := &d.o.Status.Apps[i]; app.Phase == cafev1alpha1.AppFailed && app.RollbackStartedAt == nil {
			out = append(out, app)
		}
	}
	return out
}

// applyFailurePolicy reacts to failed apps of a running order.
func (d *decider) applyFailurePolicy() {
	st := &d.o.Status
	if st.Phase != cafev1alpha1.OrderRunning {
		return
	}
	failed := d.failingApps()
	if len(failed) == 0 {
		return
	}
	names := make([]string, len(failed))
	for i, f := range failed {
		names[i] = f.Name + " (" + f.Message + ")"
	}
	what := "app failed: " + strings.Join(names, "; ")
	switch d.o.EffectiveFailurePolicy() {
	case cafev1alpha1.FailureRollbackAll:
		d.rollbackAll("", what)
	case cafev1alpha1.FailureRollbackFailed:
		for _, f := range failed {
			d.setAppPhase(f, cafev1alpha1.AppWaitingForRollback, "failed; rolling back to "+orDash(f.FromRevision)+" (failurePolicy RollbackFailed): "+f.Message)
		}
		d.setPhase(st.Phase, "", cafev1alpha1.OrderReasonAppFailed, what+"; rolling back the failed app, starting no other")
	default:
		d.hold(cafev1alpha1.OrderReasonAppFailed, what+fmt.Sprintf("; decide: cafe release resume %[1]s (another progress deadline), cafe release rollback %[1]s or cafe release cancel %[1]s", d.o.Name), "")
	}
}

// progressRollbacks starts the rollbacks the reverse dependency order
// allows.
func (d *decider) progressRollbacks() {
	st := &d.o.Status
	if st.Phase != cafev1alpha1.OrderRunning && st.Phase != cafev1alpha1.OrderRollingBack {
		return
	}
	for _, name := range rollbackStartable(d.o.Spec.Apps, st.Apps) {
		app := st.AppStatus(name)
		app.RollbackStartedAt = ptr.To(d.nowTime())
		// A hold the order put on the app is released by the effects (the
		// order no longer is Paused), so the rollback can run.
		app.PublishedGeneration, app.ConfirmGroup, app.WaitingSince = 0, nil, nil
		if app.FromRevision == "" {
			d.setAppPhase(app, cafev1alpha1.AppFailed, "nothing was published before the order: there is no revision to roll back to")
			continue
		}
		d.out.Observations = append(d.out.Observations, Observation{Kind: "rollback", App: name})
		d.setAppPhase(app, cafev1alpha1.AppRollingBack, "rolling back from "+app.ToRevision+" to "+app.FromRevision)
	}
}

// startApps starts the apps whose dependencies succeeded, while the order
// runs and nothing failed.
func (d *decider) startApps() {
	st := &d.o.Status
	if st.Phase != cafev1alpha1.OrderRunning || d.failing() {
		return
	}
	for _, name := range startable(d.o.Spec.Apps, st.Apps) {
		app, spec, v := st.AppStatus(name), d.o.Spec.App(name), d.apps[name]
		app.StartedAt, app.LastProgressAt = ptr.To(d.nowTime()), ptr.To(d.nowTime())
		if !v.Exists {
			d.failApp(app, "CafeAppService "+name+" does not exist")
			continue
		}
		app.FromRevision = v.Published
		if spec.Strategy != nil {
			raw, _ := json.Marshal(v.Strategy)
			app.OriginalStrategy, app.StrategyOverridden = string(raw), true
		}
		d.setAppPhase(app, cafev1alpha1.AppPublishing, "publishing "+app.ToRevision+" (was "+orDash(app.FromRevision)+")")
		if spec.Strategy != nil && ptr.Deref(spec.Strategy.Pause, false) {
			app.Held = true
			d.hold(cafev1alpha1.OrderReasonPausedByUser, fmt.Sprintf("%s starts paused (its strategy override): resume with cafe release resume %s", name, d.o.Name), "")
		}
	}
}

// failing reports whether an app failed or is being rolled back in a
// running order: no app starts any more.
func (d *decider) failing() bool {
	for _, app := range d.o.Status.Apps {
		switch app.Phase {
		case cafev1alpha1.AppFailed, cafev1alpha1.AppWaitingForRollback, cafev1alpha1.AppRollingBack, cafev1alpha1.AppRolledBack:
			return true
		}
	}
	return false
}

// complete ends the order when no app has anything left to do.
func (d *decider) complete() {
	st := &d.o.Status
	count := map[cafev1alpha1.ReleaseOrderAppPhase]int{}
	for _, app := range st.Apps {
		count[app.Phase]++
	}
	busy := count[cafev1alpha1.AppPublishing] + count[cafev1alpha1.AppReleasing] + count[cafev1alpha1.AppWaitingForRollback] + count[cafev1alpha1.AppRollingBack]
	switch st.Phase {
	case cafev1alpha1.OrderRunning:
		switch {
		case count[cafev1alpha1.AppSucceeded] == len(st.Apps):
			d.setPhase(cafev1alpha1.OrderSucceeded, "", cafev1alpha1.OrderReasonFinished, fmt.Sprintf("every app runs its revision (%s)", appList(d.o.Spec.Apps)))
		case d.failing() && busy == 0 && len(d.failingApps()) == 0:
			d.setPhase(cafev1alpha1.OrderFailed, "", cafev1alpha1.OrderReasonAppFailed, "an app failed: "+summarizeApps(st.Apps))
		}
	case cafev1alpha1.OrderRollingBack:
		if busy > 0 {
			return
		}
		if slices.ContainsFunc(st.Apps, func(a cafev1alpha1.ReleaseOrderAppStatus) bool {
			return a.Phase == cafev1alpha1.AppFailed && a.RollbackStartedAt != nil
		}) {
			d.setPhase(cafev1alpha1.OrderFailed, "", cafev1alpha1.OrderReasonFinished, "the rollback could not return every app: "+summarizeApps(st.Apps))
			return
		}
		d.setPhase(cafev1alpha1.OrderRolledBack, "", cafev1alpha1.OrderReasonFinished, "every app the order changed runs its previous revision again: "+summarizeApps(st.Apps))
	}
}

// summarize fills the fields kubectl get shows and the Approved condition.
func (d *decider) summarize() {
	o, st := d.o, &d.o.Status
	st.AppCount = int32(len(o.Spec.Apps))
	st.AppsSucceeded = 0
	for _, app := range st.Apps {
		if app.Phase == cafev1alpha1.AppSucceeded {
			st.AppsSucceeded++
		}
	}
	st.ApprovalSummary = fmt.Sprintf("%d/%d", len(st.Approvals), o.RequiredApprovalsUnder(d.rules.Approval))
	st.ObservedGeneration = o.Generation
	if meta.FindStatusCondition(st.Conditions, cafev1alpha1.OrderApprovedCondition) != nil &&
		meta.IsStatusConditionFalse(st.Conditions, cafev1alpha1.OrderApprovedCondition) && st.ApprovedAt == nil &&
		meta.FindStatusCondition(st.Conditions, cafev1alpha1.OrderApprovedCondition).Reason == cafev1alpha1.OrderReasonRejected {
		return
	}
	cond := metav1.Condition{Type: cafev1alpha1.OrderApprovedCondition, Status: metav1.ConditionFalse, Reason: cafev1alpha1.OrderReasonPendingApproval,
		Message: fmt.Sprintf("%d of %d approvals", len(st.Approvals), o.RequiredApprovalsUnder(d.rules.Approval)), ObservedGeneration: o.Generation, LastTransitionTime: d.nowTime()}
	if st.ApprovedAt != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, cafev1alpha1.OrderReasonApproved, "approved by "+approvers(st.Approvals)
	}
	meta.SetStatusCondition(&st.Conditions, cond)
}

// originalStrategy decodes the strategy an app had before the order's
// overrides; false when none was recorded.
func originalStrategy(app *cafev1alpha1.ReleaseOrderAppStatus) (cafev1alpha1.ReleaseOrderAppStrategy, bool) {
	var s cafev1alpha1.ReleaseOrderAppStrategy
	if app.OriginalStrategy == "" || json.Unmarshal([]byte(app.OriginalStrategy), &s) != nil {
		return s, false
	}
	return s, true
}

func sameStrategy(a, b cafev1alpha1.ReleaseOrderAppStrategy) bool {
	return equality.Semantic.DeepEqual(a.BatchSize, b.BatchSize) && equality.Semantic.DeepEqual(a.Groups, b.Groups) &&
		equality.Semantic.DeepEqual(a.NeedWaitingForConfirm, b.NeedWaitingForConfirm)
}

func appList(apps []cafev1alpha1.ReleaseOrderApp) string {
	parts := make([]string, len(apps))
	for i, a := range apps {
		parts[i] = a.Name + "=" + a.Revision
	}
	return strings.Join(parts, ", ")
}

func summarizeApps(apps []cafev1alpha1.ReleaseOrderAppStatus) string {
	parts := make([]string, len(apps))
	for i, a := range apps {
		parts[i] = a.Name + " " + string(a.Phase)
	}
	return strings.Join(parts, ", ")
}

func approvers(recs []cafev1alpha1.ReleaseApprovalRecord) string {
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = r.User
	}
	return strings.Join(names, ", ")
}

func commentSuffix(c string) string {
	if c == "" {
		return ""
	}
	return ": " + c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
