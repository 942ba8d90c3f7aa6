package nodelifecycle

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// nodeState is one judged node, or classic host, with what acting on it
// needs.
type nodeState struct {
	// Node is the node as read, or Host the classic host (one of them is
	// set); the writers patch it. The planner needs only the fields below.
	// Node is the cache's own object until writableNode copies it.
	Node      *corev1.Node
	Host      *cafev1alpha1.ClassicHost
	Name      string
	Zone      string
	Judgement nodeJudgement
	// Previous is the verdict recorded before this judgement.
	Previous cafev1alpha1.NodeVerdict
	// VerdictSince is when the node reached its current verdict.
	VerdictSince time.Time
	// UnhealthySince is when it last turned Suspect or Failed (zero while
	// Healthy).
	UnhealthySince time.Time
	// LeaseFresh: the node renewed its Lease within leaseStaleSeconds.
	LeaseFresh bool
	// NoSchedule and NoExecute: the node has CAFE's taint with that effect
	// (a host: NoSchedule while its Schedulable condition is False).
	NoSchedule, NoExecute bool
	// Movable are the node's pods an InPlaceSet runs (the host's instances
	// a ClassicSet runs), not terminating and not yet asked to migrate;
	// Migrating those already asked.
	Movable   []client.Object
	Migrating []client.Object

	// nodeCopied: Node is a copy of the cache's object, the writers' own.
	nodeCopied bool
}

// writableNode is the node for a writer to patch (the patch's answer is
// decoded into it): a copy of the cache's object, made on the first write,
// so that a pass that writes nothing copies no node.
func (s *nodeState) writableNode() *corev1.Node {
	if !s.nodeCopied {
		s.Node, s.nodeCopied = s.Node.DeepCopy(), true
	}
	return s.Node
}

// object is what the state judges, its kind ("Node" or "Host") and its
// key in the reconciler's in-memory maps.
func (s *nodeState) object() (client.Object, string, string) {
	if s.Host != nil {
		return s.Host, "Host", hostKey(s.Name)
	}
	return s.Node, "Node", s.Name
}

// countMigration counts one migration started off the state's node or
// host.
func (s *nodeState) countMigration() {
	if s.Host != nil {
		instanceMigrationsTotal.Inc()
		return
	}
	migrationsTotal.Inc()
}

// migratedKind names what migrates off the state's node or host.
func migratedKind(s *nodeState) string {
	if s.Host != nil {
		return "instance"
	}
	return "pod"
}

// nodeActions is what to do to one node.
type nodeActions struct {
	Node string
	// NoSchedule and NoExecute are whether CAFE's taints should be on the node.
	NoSchedule, NoExecute bool
	// Migrate are the pods (instances) to ask to migrate now.
	Migrate []client.Object
	// Held says why a Failed node's migration (or a taint) waits; "" if
	// nothing is held. RateLimited says the global rate limit held some
	// pods (not part of Held: it changes with every grant).
	Held        string
	RateLimited bool
	// TaintRateLimited says the taint rate limit held a new taint;
	// addsNoSchedule and addsNoExecute are the taints the plan adds.
	TaintRateLimited              bool
	addsNoSchedule, addsNoExecute bool
}

// budget is what the global rate limits allow now.
type budget struct {
	Migrations, Taints int
}

// actionPlan is the outcome of planActions.
type actionPlan struct {
	// Nodes[i] is what to do to the i-th judged node.
	Nodes []nodeActions
	// Granted is how many migrations start; TaintsGranted how many taints
	// are added.
	Granted       int
	TaintsGranted int
	// RequeueAfter is when a timed action (the NoExecute taint) comes due.
	RequeueAfter time.Duration
}

// planActions decides, for every judged node, the taints it should carry
// and which pods start migrating, within the safety limits:
//   - Observe mode: no taint and no migration (CAFE's taints are removed);
//   - a Healthy node carries no CAFE taint (recovery uncordons);
//   - Suspect or Failed: cordon (NoSchedule);
//   - Failed: migrate its InPlaceSet pods, oldest verdict first, no more than
//     tokens in all (the global rate limit); once none is left on the node and
//     migration.otherPodsAfterSeconds have passed since the verdict, the
//     NoExecute taint sends the pods of other owners away;
//   - a guarded zone gets no new taint and no migration (taints already on
//     stay);
//   - a node whose Lease is fresh is not migrated, unless the policy accepts
//     an external report as evidence enough and one is among the signals;
//   - no more than taint tokens taints are added in all (the taint rate
//     limit), oldest verdict first: the others wait for the next window.
func planActions(nodes []nodeState, zones []cafev1alpha1.ZoneHealth, p *cafev1alpha1.NodeLifecyclePolicySpec, tokens budget, now time.Time) actionPlan {
	guarded := map[string]cafev1alpha1.ZoneHealth{}
	for _, z := range zones {
		if z.Guarded {
			guarded[z.Name] = z
		}
	}
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := nodes[order[a]], nodes[order[b]]
		if !x.VerdictSince.Equal(y.VerdictSince) {
			return x.VerdictSince.Before(y.VerdictSince)
		}
		return x.Name < y.Name
	})

	var out actionPlan
	out.Nodes = make([]nodeActions, len(nodes))
	for _, i := range order {
		n := nodes[i]
		a := nodeActions{Node: n.Name, NoSchedule: n.NoSchedule, NoExecute: n.NoExecute}
		z, isGuarded := guarded[n.Zone]
		verdict := n.Judgement.Verdict
		switch {
		case p.Mode == cafev1alpha1.NodeLifecycleObserve || verdict == cafev1alpha1.NodeVerdictHealthy:
			a.NoSchedule, a.NoExecute = false, false
		case isGuarded:
			a.Held = fmt.Sprintf("zone guard: %d of %s of zone %q are Suspect or Failed (more than %d%%); nothing more is tainted or migrated there", z.Unhealthy, members(z), z.Name, p.ZoneGuard.MaxUnhealthyPercent)
		default:
			a.NoSchedule = true
			if verdict == cafev1alpha1.NodeVerdictFailed {
				out.failed(&a, n, p, &tokens.Migrations, now)
			}
			out.limitNewTaints(&a, n, p, &tokens.Taints)
		}
		out.Nodes[i] = a
	}
	return out
}

// limitNewTaints lets the taints a node gets (not those it has) through
// while taint tokens last, and holds the rest.
func (out *actionPlan) limitNewTaints(a *nodeActions, n nodeState, p *cafev1alpha1.NodeLifecyclePolicySpec, tokens *int) {
	grant := func(want *bool, have bool, adds *bool) {
		if !*want || have {
			return
		}
		if *tokens <= 0 {
			*want, a.TaintRateLimited = false, true
			return
		}
		*tokens--
		out.TaintsGranted++
		*adds = true
	}
	grant(&a.NoSchedule, n.NoSchedule, &a.addsNoSchedule)
	grant(&a.NoExecute, n.NoExecute, &a.addsNoExecute)
	if a.TaintRateLimited && a.Held == "" {
		a.Held = fmt.Sprintf("taint rate limit: at most %d %s taints are added per minute (spec.migration.maxNewTaintsPerMinute)", p.Migration.MaxNewTaintsPerMinute, cafev1alpha1.UnhealthyTaintKey)
	}
}

// withdrawGrants takes back every migration the plan starts and every
// taint it adds, as if the rate limits had held them: what happens when
// their grants could not be recorded.
func (out *actionPlan) withdrawGrants() {
	for i := range out.Nodes {
		a := &out.Nodes[i]
		if len(a.Migrate) > 0 {
			a.Migrate, a.RateLimited = nil, true
		}
		if a.addsNoSchedule || a.addsNoExecute {
			a.NoSchedule = a.NoSchedule && !a.addsNoSchedule
			a.NoExecute = a.NoExecute && !a.addsNoExecute
			a.addsNoSchedule, a.addsNoExecute, a.TaintRateLimited = false, false, true
		}
	}
}

// failed plans the migration of a Failed node outside a guarded zone.
func (out *actionPlan) failed(a *nodeActions, n nodeState, p *cafev1alpha1.NodeLifecyclePolicySpec, tokens *int, now time.Time) {
	if n.LeaseFresh && !(p.Migration.FreshLease == cafev1alpha1.FreshLeaseWithExternalReport && hasSignal(n.Judgement, cafev1alpha1.SignalExternalReport)) {
		a.Held = "the node's Lease is fresh: its pods are not migrated (spec.migration.freshLease: " + string(p.Migration.FreshLease) + ")"
		return
	}
	for _, target := range n.Movable {
		if *tokens <= 0 {
			a.RateLimited = true
			break
		}
		a.Migrate = append(a.Migrate, target)
		*tokens--
		out.Granted++
	}
	if len(n.Movable) > 0 || len(n.Migrating) > 0 || n.Host != nil {
		// A host runs only CAFE's instances: no other owners to evict.
		return
	}
	due := n.VerdictSince.Add(seconds(p.Migration.OtherPodsAfterSeconds))
	if !due.After(now) {
		a.NoExecute = true
		return
	}
	if d := due.Sub(now); out.RequeueAfter == 0 || d < out.RequeueAfter {
		out.RequeueAfter = d
	}
}

func hasSignal(d nodeJudgement, name cafev1alpha1.NodeSignal) bool {
	for _, s := range d.Bad {
		if s.Name == name {
			return true
		}
	}
	return false
}
