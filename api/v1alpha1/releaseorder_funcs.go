package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// IsFinished reports whether the phase ends the order: it is then only a
// record.
func (p ReleaseOrderPhase) IsFinished() bool {
	switch p {
	case OrderSucceeded, OrderFailed, OrderRolledBack, OrderCancelled:
		return true
	}
	return false
}

// IsFinished reports whether the order has ended.
func (o *ReleaseOrder) IsFinished() bool { return o.Status.Phase.IsFinished() }

// TrailTampered reports whether CAFE stopped the order because its audit
// trail no longer matches the head CAFE signed. Such an order never
// progresses again (not even a Cancel can be chained onto the trail); it
// stays as evidence, and it no longer holds its apps against other orders.
func (o *ReleaseOrder) TrailTampered() bool {
	c := meta.FindStatusCondition(o.Status.Conditions, OrderAuditIntactCondition)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == AuditReasonTrailTampered
}

// HoldsApps reports whether the order still claims its apps: it is open and
// can still progress.
func (o *ReleaseOrder) HoldsApps() bool { return !o.IsFinished() && !o.TrailTampered() }

// EffectivePhase is the phase, PendingApproval for an order the controller
// has not seen yet.
func (o *ReleaseOrder) EffectivePhase() ReleaseOrderPhase {
	if o.Status.Phase == "" {
		return OrderPendingApproval
	}
	return o.Status.Phase
}

// actionPhases says in which phases each action is allowed.
var actionPhases = map[ReleaseActionType][]ReleaseOrderPhase{
	ActionApprove:  {OrderPendingApproval},
	ActionReject:   {OrderPendingApproval, OrderApproved, OrderScheduled},
	ActionStart:    {OrderApproved},
	ActionPause:    {OrderRunning},
	ActionResume:   {OrderPaused},
	ActionConfirm:  {OrderRunning},
	ActionCancel:   {OrderPendingApproval, OrderApproved, OrderScheduled, OrderRunning, OrderPaused},
	ActionRollback: {OrderRunning, OrderPaused, OrderFailed, OrderSucceeded},
}

// ActionAllowedIn returns nil when action may be taken on an order in
// phase, else an error saying in which phases it may.
func ActionAllowedIn(action ReleaseActionType, phase ReleaseOrderPhase) error {
	phases, ok := actionPhases[action]
	if !ok {
		return fmt.Errorf("unknown action %q", action)
	}
	if slices.Contains(phases, phase) {
		return nil
	}
	names := make([]string, len(phases))
	for i, p := range phases {
		names[i] = string(p)
	}
	return fmt.Errorf("%s is not allowed while the order is %s (only when %s)", action, phase, strings.Join(names, " or "))
}

// Verb is the RBAC verb on releaseorders that allows the action.
func (a ReleaseActionType) Verb() string { return strings.ToLower(string(a)) }

// RequiredApprovals is spec.approval.required with its default.
func (o *ReleaseOrder) RequiredApprovals() int {
	return int(ptr.Deref(o.Spec.Approval.Required, DefaultRequiredApprovals))
}

// ProgressDeadline is spec.progressDeadlineSeconds with its default.
func (o *ReleaseOrder) ProgressDeadline() time.Duration {
	return time.Duration(ptr.Deref(o.Spec.ProgressDeadlineSeconds, DefaultProgressDeadlineSeconds)) * time.Second
}

// EffectiveFailurePolicy is spec.failurePolicy with its default.
func (o *ReleaseOrder) EffectiveFailurePolicy() FailurePolicy {
	if o.Spec.FailurePolicy == "" {
		return FailurePause
	}
	return o.Spec.FailurePolicy
}

// App returns the spec entry of the named app, or nil.
func (s *ReleaseOrderSpec) App(name string) *ReleaseOrderApp {
	for i := range s.Apps {
		if s.Apps[i].Name == name {
			return &s.Apps[i]
		}
	}
	return nil
}

// AppStatus returns the status entry of the named app, or nil.
func (s *ReleaseOrderStatus) AppStatus(name string) *ReleaseOrderAppStatus {
	for i := range s.Apps {
		if s.Apps[i].Name == name {
			return &s.Apps[i]
		}
	}
	return nil
}

// HoldAnnotation is the annotation by which an open order keeps the
// revisions it refers to from garbage collection. Its name part fits 63
// characters whatever the order's name (see shortName).
func (o *ReleaseOrder) HoldAnnotation() string {
	return HoldAnnotationPrefix + shortName("releaseorder-"+o.Name, 63)
}

// ReleaseOrderLabelValue is the value of ReleaseOrderLabel for the order
// named name: the name itself when it fits a label value, else a
// hash-shortened form. Orders created before names were bounded may be
// longer than 63 characters; their actions must still be admitted.
func ReleaseOrderLabelValue(name string) string { return shortName(name, 63) }

// shortName returns s when it has at most max characters, else a prefix of
// s and a hash of the whole, max characters long: distinct for distinct s,
// and still a valid label value or key name when s is one.
func shortName(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	suffix := "-" + hex.EncodeToString(sum[:])[:16]
	return strings.TrimRight(s[:max-len(suffix)], "-_.") + suffix
}

// MaxAuditedActions is how many actions an order records one by one in
// its audit trail. Beyond it only a Cancel is taken (others are refused in
// status.actions only), so that no burst of actions can fill the trail
// and stop the order from being written.
const MaxAuditedActions = 256

// ActionsProcessed counts every action the order has processed.
func (s *ReleaseOrderStatus) ActionsProcessed() int {
	return int(s.ActionsCompacted) + len(s.Actions)
}

// ControllerIdentity is the identity CAFE's controller records its own
// changes under: its ServiceAccount's user name, which the API server gives
// no one else. CAFE's admission webhooks refuse orders and actions
// authenticated as it, so no person's act can be recorded as CAFE's.
const ControllerIdentity = "system:serviceaccount:cafe-system:cafe-controller-manager"

// MaxRecordedUserLength bounds an authenticated user name CAFE records in
// a status (publishedBy, confirmedBy, reportedBy; the schema's MaxLength
// says the same): a stamping webhook refuses a longer one, and a
// controller ignores an annotation holding one, which CAFE cannot have
// stamped, rather than write a status the API server would refuse.
const MaxRecordedUserLength = 512

// serviceAccountPrefix starts the user names of ServiceAccounts.
const serviceAccountPrefix = "system:serviceaccount:"

// ApprovalPolicy is the cluster's floor under every order's approval
// rules, set by CAFE's operator (flags of cafe manager), not by requesters.
type ApprovalPolicy struct {
	// MinApprovals is the least number of approvals any order needs,
	// whatever its spec.approval.required says.
	MinApprovals int
	// ApproverGroups, when set, limits every approval to members of one of
	// these groups (on top of the order's own approverGroups).
	ApproverGroups []string
	// ServiceAccounts are the ServiceAccount user names
	// (system:serviceaccount:<ns>:<name>) allowed to approve; any other
	// ServiceAccount is refused, so a requester who can run pods cannot
	// approve through one.
	ServiceAccounts []string
}

// RequiredApprovalsUnder is the number of approvals the order needs under
// the cluster's policy: its own, never fewer than the policy's minimum.
func (o *ReleaseOrder) RequiredApprovalsUnder(p ApprovalPolicy) int {
	return max(o.RequiredApprovals(), p.MinApprovals)
}

// WindowState says where now stands against the order's window.
func (o *ReleaseOrder) WindowState(now time.Time) (opensAt time.Time, notYetOpen, closed bool) {
	w := o.Spec.Window
	if w == nil {
		return time.Time{}, false, false
	}
	if w.Start != nil && now.Before(w.Start.Time) {
		return w.Start.Time, true, false
	}
	if w.End != nil && !now.Before(w.End.Time) {
		return time.Time{}, false, true
	}
	return time.Time{}, false, false
}

// CheckApprover returns why user may not approve the order under the
// cluster's policy, or nil: four eyes (never the requester, never CAFE
// itself, no ServiceAccount the policy does not name), one approval per
// person, and membership of an approver group when the policy or the order
// names some.
func (o *ReleaseOrder) CheckApprover(user string, groups []string, p ApprovalPolicy) error {
	switch {
	case o.Spec.RequestedBy == "":
		return fmt.Errorf("the order has no recorded requester, so the four-eyes rule cannot be checked: it cannot be approved")
	case user == o.Spec.RequestedBy:
		return fmt.Errorf("%s requested this order and cannot approve it: an order needs approvals from people other than its requester (four eyes)", user)
	case user == ControllerIdentity:
		return fmt.Errorf("%s is CAFE's own identity: CAFE never approves an order", user)
	case strings.HasPrefix(user, serviceAccountPrefix) && !slices.Contains(p.ServiceAccounts, user):
		return fmt.Errorf("%s is a ServiceAccount: four eyes needs people; the cluster's approval policy names no such ServiceAccount as an approver (cafe manager --approver-service-accounts)", user)
	}
	for _, a := range o.Status.Approvals {
		if a.User == user {
			return fmt.Errorf("%s already approved this order at %s: approvals must come from %d distinct people", user, a.Time.UTC().Format(time.RFC3339), o.RequiredApprovalsUnder(p))
		}
	}
	inOneOf := func(allowed []string) bool {
		return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(allowed, g) })
	}
	if ag := p.ApproverGroups; len(ag) > 0 && !inOneOf(ag) {
		return fmt.Errorf("%s is in none of the cluster's approver groups (%s)", user, strings.Join(ag, ", "))
	}
	if ag := o.Spec.Approval.ApproverGroups; len(ag) > 0 && !inOneOf(ag) {
		return fmt.Errorf("%s is in none of the order's approver groups (%s)", user, strings.Join(ag, ", "))
	}
	return nil
}

// DependencyCycle returns the names of one dependency cycle among the
// order's apps (the first app repeated at the end, e.g. [a b c a]), or nil
// when the dependencies form a DAG. Dependencies on names that are not in
// the order are ignored (the CRD refuses them).
func (s *ReleaseOrderSpec) DependencyCycle() []string {
	deps := map[string][]string{}
	var names []string
	for _, a := range s.Apps {
		deps[a.Name] = a.DependsOn
		names = append(names, a.Name)
	}
	sort.Strings(names)
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = onStack
		stack = append(stack, n)
		next := slices.Clone(deps[n])
		sort.Strings(next)
		for _, d := range next {
			if _, known := deps[d]; !known {
				continue
			}
			switch state[d] {
			case onStack:
				i := slices.Index(stack, d)
				cycle = append(slices.Clone(stack[i:]), d)
				return true
			case unvisited:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return false
	}
	for _, n := range names {
		if state[n] == unvisited && visit(n) {
			return cycle
		}
	}
	return nil
}
