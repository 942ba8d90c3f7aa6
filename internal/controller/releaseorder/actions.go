package releaseorder

import (
	"fmt"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Bounds on the actions an order processes, so that no burst of actions
// makes its status too large to write.
const (
	// actionsPerReconcile is how many actions one reconcile processes; the
	// rest wait for the next one, due at once.
	actionsPerReconcile = 32
	// keptActionRecords is how many records status.actions keeps; older
	// ones are counted in status.actionsCompacted (their audit entries
	// stay).
	keptActionRecords = 64
	// auditCeiling is the audit trail length (of the CRD's 2048) past which
	// only a Cancel gets an audit entry of its own: the rest is room for
	// the entries the order's own ending and rollbacks write.
	auditCeiling = 1536
)

// IdentityVerifier checks that a stamped identity carries the seal of
// CAFE's admission webhook (seal.Key).
type IdentityVerifier interface {
	VerifyAction(ns string, s cafev1alpha1.ReleaseActionSpec) error
	VerifyOrder(ns string, s cafev1alpha1.ReleaseOrderSpec) error
}

// orderRules are what decide judges identities and approvals by.
type orderRules struct {
	Identity IdentityVerifier
	Approval cafev1alpha1.ApprovalPolicy
	// IdleTimeout cancels an order that changed no app once nobody acted
	// on it for this long (zero: never).
	IdleTimeout time.Duration
}

// pendingAction is an action to process with what decide knows of it.
type pendingAction struct {
	*cafev1alpha1.ReleaseAction
	// at orders the actions: the admission time when the seal verifies,
	// else the creation time (a forged admittedAt must not reorder).
	at metav1.MicroTime
	// unsealed says why its identity is not trusted (nil: trusted).
	unsealed error
	// late is set when it was admitted before an action already processed
	// (it reached the cache after it): it is refused, not reordered.
	late string
}

// before orders actions by time, then name.
func (p pendingAction) before(q pendingAction) bool {
	if !p.at.Equal(&q.at) {
		return p.at.Before(&q.at)
	}
	return p.Name < q.Name
}

// recordKey is a processed action's place in the order of actions.
func recordKey(r cafev1alpha1.ReleaseActionRecord) pendingAction {
	at := metav1.NewMicroTime(r.Time.Time)
	if r.AdmittedAt != nil {
		at = *r.AdmittedAt
	}
	return pendingAction{ReleaseAction: &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Name: r.Name}}, at: at}
}

// compactedThrough is the latest place of the records compacted away
// (nil: none were). Orders compacted before status.actionsCompactedThrough
// existed fall back to the oldest record kept.
func compactedThrough(st *cafev1alpha1.ReleaseOrderStatus) *pendingAction {
	if m := st.ActionsCompactedThrough; m != nil {
		return &pendingAction{ReleaseAction: &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Name: m.Name}}, at: m.AdmittedAt}
	}
	if st.ActionsCompacted == 0 {
		return nil
	}
	var oldest *pendingAction
	for _, r := range st.Actions {
		if k := recordKey(r); oldest == nil || k.before(*oldest) {
			oldest = &k
		}
	}
	return oldest
}

// pendingActions returns the actions of list still to process, in the order
// they were admitted, at most actionsPerReconcile of them, and whether more
// wait. An action is processed once: after the last processed one it is
// new; at or before the place of the records compacted away it was
// processed; in between it came late and is refused. (An action that
// reaches the cache after 64 later ones were processed and compacted is
// taken for a compacted one: with sealed, microsecond admission times that
// needs a race far longer than a request.)
func pendingActions(o *cafev1alpha1.ReleaseOrder, list []cafev1alpha1.ReleaseAction, id IdentityVerifier) ([]pendingAction, bool) {
	recs := o.Status.Actions
	var last *pendingAction
	for _, r := range recs {
		if k := recordKey(r); last == nil || last.before(k) {
			last = &k
		}
	}
	compacted := compactedThrough(&o.Status)
	var out []pendingAction
	for i := range list {
		a := &list[i]
		if slices.ContainsFunc(recs, func(r cafev1alpha1.ReleaseActionRecord) bool { return r.Name == a.Name }) {
			continue
		}
		p := pendingAction{ReleaseAction: a, at: metav1.NewMicroTime(a.CreationTimestamp.Time), unsealed: id.VerifyAction(a.Namespace, a.Spec)}
		if p.unsealed == nil && a.Spec.AdmittedAt != nil {
			p.at = *a.Spec.AdmittedAt
		}
		switch {
		case last == nil || last.before(p):
		case compacted != nil && !compacted.before(p):
			continue
		default:
			p.late = last.Name
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].before(out[j]) })
	if len(out) > actionsPerReconcile {
		return out[:actionsPerReconcile], true
	}
	return out, false
}

// refusal returns why the action is refused before its effect is judged,
// or nil.
func (d *decider) refusal(a pendingAction) error {
	st := &d.o.Status
	switch {
	case a.unsealed != nil:
		return fmt.Errorf("the action (actor %q) is %w", a.Spec.Actor, a.unsealed)
	case a.Spec.Actor == cafev1alpha1.ControllerIdentity:
		return fmt.Errorf("%s is CAFE's own identity: no action is taken in its name", a.Spec.Actor)
	case a.late != "":
		return fmt.Errorf("admitted at %s, before %s, which was processed first: repeat the action if it still holds", a.at.UTC().Format(time.RFC3339Nano), a.late)
	case slices.ContainsFunc(st.Actions, func(r cafev1alpha1.ReleaseActionRecord) bool {
		return a.Spec.AdmittedAt != nil && r.AdmittedAt != nil && r.AdmittedAt.Equal(a.Spec.AdmittedAt)
	}):
		return fmt.Errorf("it repeats the sealed stamp of an action already processed (a copy): it is not taken twice")
	case !d.auditsActions() && a.Spec.Action != cafev1alpha1.ActionCancel:
		return fmt.Errorf("the order has processed %d actions, the most its audit trail records one by one: only a Cancel is taken now", st.ActionsProcessed())
	}
	return nil
}

// auditsActions reports whether the trail has room for more actions of
// every kind.
func (d *decider) auditsActions() bool {
	st := &d.o.Status
	return st.ActionsProcessed() < cafev1alpha1.MaxAuditedActions && len(st.Audit) < auditCeiling
}

// compactActions keeps the newest keptActionRecords records, counts the
// others and moves status.actionsCompactedThrough past them. Records are
// kept in the order they were processed, which is not the order of
// admission when an action came late: the place is the latest of all.
func (d *decider) compactActions() {
	st := &d.o.Status
	n := len(st.Actions) - keptActionRecords
	if n <= 0 {
		return
	}
	through := compactedThrough(st)
	for _, r := range st.Actions[:n] {
		if k := recordKey(r); through == nil || through.before(k) {
			through = &k
		}
	}
	st.ActionsCompactedThrough = &cafev1alpha1.ReleaseActionMark{AdmittedAt: through.at, Name: through.Name}
	st.Actions = slices.Clone(st.Actions[n:])
	st.ActionsCompacted += int32(n)
}
