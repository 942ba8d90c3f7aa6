package inplaceset

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cafe-io/cafe/internal/lossless"
)

// podState is what the planner knows about one pod; gathered from the cache
// by the reconciler, decided on here without any API call.
type podState struct {
	Pod *corev1.Pod
	// Updated: the pod runs the update revision (its revision label says so).
	Updated bool
	// Terminating: deletion has begun.
	Terminating bool
	// Ready is the pod's Ready condition (containers and every gate).
	Ready bool
	// ContainersReady and ReadySince tell when the pod could serve again:
	// ReadySince is when its containers last became ready (or restarted).
	ContainersReady bool
	ReadySince      time.Time
	// GateOpen is cafe.io/traffic-ready=True; DrainReason is set while it is
	// closed for an operation.
	GateOpen    bool
	DrainReason string
	// Drained: gate closed and nothing routes traffic to it.
	Drained bool
	// TrafficHolders, while the pod drains, say what still routes to it
	// (lossless.TrafficHolders).
	TrafficHolders []string
	// InPlacePending: an in-place update was applied and the kubelet has not
	// yet reported the new images.
	InPlacePending bool
	// InPlaceEligible: moving this pod to the update revision changes only
	// images, labels and annotations.
	InPlaceEligible bool
	// DeleteRequested: someone asked for this pod to go (kubectl delete pod,
	// turned into a drain request by the admission webhook); it is drained,
	// deleted and replaced.
	DeleteRequested bool
	// MigrateRequested: the pod is to move to another node (its node
	// failed; cafe.io/migration-requested): a replacement is created first,
	// and the pod is drained and deleted only once the set has its replicas
	// available without it, or at once when it serves nobody anyway.
	MigrateRequested bool
	// Listed and Dropped, when the set writes its Service's endpoints
	// (planInput.OwnEndpoints), say whether the set's EndpointSlices list
	// the pod ready, or carry it not ready: an old-revision pod they
	// dropped is being updated (the drain by slice). Neither: the slices
	// have never carried it.
	Listed  bool
	Dropped bool
	// TrafficGuarded: a traffic provider's finalizer is on the pod. Its
	// provider follows the gate, so such a pod drains through the gate
	// even when the set writes its endpoints.
	TrafficGuarded bool
	// DroppedSince is when the set was first seen to have dropped the pod
	// (for status only: a drain held for long is reported).
	DroppedSince time.Time
}

// planInput is the desired state and the observed pods.
type planInput struct {
	Replicas        int
	Partition       int
	MaxUnavailable  int
	MinReadySeconds time.Duration
	Paused          bool
	Now             time.Time
	Pods            []podState
	// OwnEndpoints: the set writes its Service's EndpointSlices, so an
	// in-place update drains a pod by dropping it from them (List, Unlist)
	// instead of closing its gate, and a pod serves only while listed.
	OwnEndpoints bool
}

// planResult lists the writes of one reconcile; every list is independent
// and idempotent, so the reconciler may execute them in any order.
type planResult struct {
	// CreateUpdated and CreateCurrent are pods to create at the update and at
	// the current revision (the latter keeps a partition when replacing pods).
	CreateUpdated int
	CreateCurrent int
	CloseGate     []lossless.GateChange
	UpdateInPlace []*corev1.Pod
	Delete        []*corev1.Pod
	OpenGate      []*corev1.Pod
	// List and Unlist are pods to list ready in the set's EndpointSlices
	// and to drop from them (OwnEndpoints).
	List   []*corev1.Pod
	Unlist []*corev1.Pod
	// RequeueAfter is when a pod's minReadySeconds will have passed.
	RequeueAfter time.Duration
	// Blocked explains why an update cannot proceed now (for status).
	Blocked string
	// HeldDrain names a drain the traffic systems have held for longer
	// than lossless.SlowDrain (for status: the release waits on it).
	HeldDrain string
}

// plan decides the next writes for an InPlaceSet. The rules:
//   - surplus pods are drained for deletion and deleted once drained (scale-in
//     is not limited by maxUnavailable: it removes capacity on purpose);
//   - missing pods are created, at the update revision until replicas −
//     partition pods run it, then at the current revision;
//   - up to replicas − partition pods are moved to the update revision, never
//     more at a time than maxUnavailable allows counting every pod that is not
//     Ready, draining or missing; each is drained first, then updated in place
//     (only images/labels/annotations change) or deleted to be recreated;
//   - a pod whose operation is done, or no longer wanted, gets its gate
//     opened once its containers have been ready for minReadySeconds;
//   - paused starts no drain and no operation; drains not yet acted on are
//     cancelled so a pause does not hold capacity down;
//   - one reconcile creates at most maxCreatesPerSync pods, and never so many
//     that the set would hold more than twice its replicas: migrating pods
//     are replaced first, but a set whose every pod asks to migrate (a
//     template-copied annotation, a buggy reporter) cannot multiply.
func plan(in planInput) planResult {
	var out planResult
	active := in.Pods
	if slices.ContainsFunc(active, isTerminating) {
		// Read-only below, so shared unless some pods must be left out.
		active = slices.DeleteFunc(slices.Clone(active), isTerminating)
	}
	replicas := max(in.Replicas, 0)
	partition := min(max(in.Partition, 0), replicas)
	targetUpdated := replicas - partition

	// Migrating pods leave the set: they do not count as replicas, so their
	// replacements are created now, but they are drained only by
	// planMigrations.
	var migrating []podState
	for _, p := range active {
		if p.MigrateRequested && !p.DeleteRequested {
			migrating = append(migrating, p)
		}
	}
	active = without(active, migrating)
	toDelete := chooseSurplus(active, replicas)
	kept := without(active, toDelete)

	// Missing pods are created at the update revision first: a pod deleted
	// to be recreated comes back updated, and counts towards the target, so
	// no other pod is chosen in its place.
	updated := 0
	for _, p := range kept {
		if p.Updated {
			updated++
		}
	}
	missing := replicas - len(kept)
	var createUpdated, createCurrent int
	if missing > 0 {
		createUpdated = min(missing, max(targetUpdated-updated, 0))
		createCurrent = missing - createUpdated
	}
	var toUpdate []podState
	if !in.Paused {
		toUpdate = chooseUpdates(kept, targetUpdated-createUpdated)
	}
	room := min(maxCreatesPerSync, 2*replicas-len(active)-len(migrating))
	out.CreateUpdated = min(createUpdated, max(room, 0))
	out.CreateCurrent = min(createCurrent, max(room-out.CreateUpdated, 0))
	updating := map[*corev1.Pod]bool{}
	for _, p := range toUpdate {
		updating[p.Pod] = true
	}

	for _, p := range toDelete {
		switch {
		case in.Paused:
			// Scale-in waits for resume too; a drain already begun stays.
		case p.DrainReason != lossless.ReasonDrainForDelete:
			out.CloseGate = append(out.CloseGate, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForDelete})
		case p.Drained:
			out.Delete = append(out.Delete, p.Pod)
		default:
			out.noteHeldDrain(p, in)
		}
	}

	out.planMigrations(migrating, kept, replicas, in)

	budget := in.MaxUnavailable - out.unavailable(kept, in) - max(missing, 0)
	for _, p := range kept {
		if !updating[p.Pod] {
			out.maybeOpen(p, in)
		}
	}
	for _, p := range toUpdate {
		if in.drainsBySlice(p) {
			budget = out.updateBySlice(p, in, budget)
			continue
		}
		switch {
		case p.DrainReason == "":
			// Draining a pod that is already unavailable takes nothing more
			// away, so it is free; any other drain spends the budget.
			if in.available(p) {
				if budget <= 0 {
					if out.Blocked == "" {
						out.Blocked = "maxUnavailable reached: waiting for pods to become available before draining more"
					}
					continue
				}
				budget--
			}
			out.CloseGate = append(out.CloseGate, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForUpdate})
		case !p.Drained:
			// Waiting for EndpointSlices and traffic providers to let go.
			out.noteHeldDrain(p, in)
		case p.InPlaceEligible:
			out.UpdateInPlace = append(out.UpdateInPlace, p.Pod)
		default:
			out.Delete = append(out.Delete, p.Pod)
		}
	}
	return out
}

// drainsBySlice: the pod's update drains it by dropping it from the set's
// EndpointSlices, with no write to the pod. Only in-place updates do (a
// recreated pod costs a pod create anyway), and only pods no traffic
// provider guards (providers follow the gate) and whose gate no other
// operation closed.
func (in planInput) drainsBySlice(p podState) bool {
	return in.OwnEndpoints && p.InPlaceEligible && !p.TrafficGuarded && p.GateOpen && p.DrainReason == ""
}

// updateBySlice takes one step of a pod's update by slice: drop it from
// the slices (spending the budget if it served), wait for nothing else to
// route to it, update it in place. A pod the slices have never carried
// (the set has just begun to publish) is listed first, so that its update
// is drained like any other. It returns the budget left.
func (out *planResult) updateBySlice(p podState, in planInput, budget int) int {
	switch {
	case p.Listed:
		if in.available(p) {
			if budget <= 0 {
				if out.Blocked == "" {
					out.Blocked = "maxUnavailable reached: waiting for pods to become available before draining more"
				}
				return budget
			}
			budget--
		}
		out.Unlist = append(out.Unlist, p.Pod)
	case !p.Dropped && p.Ready:
		out.maybeOpen(p, in)
	case !p.Drained:
		out.noteHeldDrain(p, in)
	default:
		out.UpdateInPlace = append(out.UpdateInPlace, p.Pod)
	}
	return budget
}

// planMigrations drains and deletes migrating pods without ever lowering
// the set's availability below its replicas: a migrating pod that still
// serves is drained only once replicas other pods are available (its
// replacement is up); one that serves nobody (its node failed, so it was
// marked not ready) costs nothing and is drained at once. A pod that is
// Ready with its gate open serves even before minReadySeconds have made it
// available, so it waits for its replacement too. Pause does not
// hold a migration: a failed node does not wait for a release.
func (out *planResult) planMigrations(migrating, kept []podState, replicas int, in planInput) {
	availableOthers := 0
	for _, p := range kept {
		if in.available(p) && p.DrainReason == "" {
			availableOthers++
		}
	}
	for _, p := range migrating {
		switch {
		case p.DrainReason != lossless.ReasonDrainForDelete:
			if in.serves(p) && availableOthers < replicas {
				if out.Blocked == "" {
					out.Blocked = "migration: waiting for the replacement pods to be available before draining the migrating ones"
				}
				continue
			}
			out.CloseGate = append(out.CloseGate, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForDelete})
		case p.Drained:
			out.Delete = append(out.Delete, p.Pod)
		}
	}
}

// noteHeldDrain reports the first drain held by traffic for longer than
// lossless.SlowDrain, and asks to be woken when a younger one would be.
func (out *planResult) noteHeldDrain(p podState, in planInput) {
	held, wait := lossless.HeldDrain(p.Pod, p.TrafficHolders, in.Now)
	if p.DrainReason == "" && p.Dropped {
		held, wait = lossless.HeldSince(p.Pod, p.DroppedSince, p.TrafficHolders, in.Now)
	}
	if held != "" && out.HeldDrain == "" {
		out.HeldDrain = held
	}
	out.requeueIn(wait)
}

// maybeOpen opens the gate of a pod that is not (or no longer) to be
// operated on, once it has been ready for minReadySeconds, and, when the
// set writes its endpoints, then lists it in them. This also cancels a
// drain that is no longer wanted (a raised partition, a pause).
func (out *planResult) maybeOpen(p podState, in planInput) {
	toList := in.OwnEndpoints && p.GateOpen && !p.Listed
	if (p.GateOpen && !toList) || p.InPlacePending || !p.ContainersReady {
		return
	}
	if wait := p.ReadySince.Add(in.MinReadySeconds).Sub(in.Now); wait > 0 {
		out.requeueIn(wait)
		return
	}
	switch {
	case !p.GateOpen:
		out.OpenGate = append(out.OpenGate, p.Pod)
	case p.Ready:
		out.List = append(out.List, p.Pod)
	}
}

// serves: Ready with the gate open and, when the set writes its
// endpoints, listed in them.
func (in planInput) serves(p podState) bool {
	return p.Ready && p.GateOpen && (!in.OwnEndpoints || p.Listed)
}

// available: serving for at least minReadySeconds. A pod whose containers
// crashed and recovered is Ready again at once (its gate stayed open) but
// counts as available only minReadySeconds later.
func (in planInput) available(p podState) bool {
	return in.serves(p) && !p.ReadySince.Add(in.MinReadySeconds).After(in.Now)
}

// unavailable counts pods that are not available or are closed for an
// operation (pods chosen for update but not yet drained still serve), and
// asks to be woken when a Ready pod becomes available.
func (out *planResult) unavailable(pods []podState, in planInput) int {
	n := 0
	for _, p := range pods {
		if in.available(p) && p.DrainReason == "" {
			continue
		}
		n++
		if in.serves(p) {
			out.requeueIn(p.ReadySince.Add(in.MinReadySeconds).Sub(in.Now))
		}
	}
	return n
}

// requeueIn keeps the earliest positive wake-up.
func (out *planResult) requeueIn(d time.Duration) {
	if d > 0 && (out.RequeueAfter == 0 || d < out.RequeueAfter) {
		out.RequeueAfter = d
	}
}

// chooseSurplus picks the pods to remove: every pod whose deletion was
// requested (it is replaced), and, when more than replicas remain, those
// already draining for deletion, then not ready, then old revision, then by
// name (deterministic, so consecutive reconciles agree).
func chooseSurplus(active []podState, replicas int) []podState {
	var requested []podState
	for _, p := range active {
		if p.DeleteRequested {
			requested = append(requested, p)
		}
	}
	surplus := len(active) - len(requested) - replicas
	if surplus <= 0 {
		// The usual case (no scale-in): no copy of the set's pods.
		return requested
	}
	others := make([]podState, 0, len(active)-len(requested))
	for _, p := range active {
		if !p.DeleteRequested {
			others = append(others, p)
		}
	}
	slices.SortStableFunc(others, func(a, b podState) int {
		if less, decided := cheaperFirst(a, b, lossless.ReasonDrainForDelete); decided {
			return firstIf(less)
		}
		if a.Updated != b.Updated {
			return firstIf(!a.Updated)
		}
		return strings.Compare(b.Pod.Name, a.Pod.Name)
	})
	return append(requested, others[:surplus]...)
}

// firstIf is a comparison result: -1 (a first) when aFirst, else 1.
func firstIf(aFirst bool) int {
	if aFirst {
		return -1
	}
	return 1
}

// chooseUpdates picks, in the order to act on them, which old-revision pods
// move to the update revision so that target pods run it: pods already
// draining for update first (finish what was begun), then not ready ones
// (they serve nobody), then by name.
func chooseUpdates(kept []podState, target int) []podState {
	updated := 0
	for _, p := range kept {
		if p.Updated {
			updated++
		}
	}
	need := target - updated
	if need <= 0 {
		// The release is done (or paused at its partition): no copy.
		return nil
	}
	old := make([]podState, 0, len(kept)-updated)
	for _, p := range kept {
		if !p.Updated {
			old = append(old, p)
		}
	}
	// Names are unique in a set, so the order is total and an unstable
	// sort gives the stable one's result with far fewer moves.
	slices.SortFunc(old, func(a, b podState) int {
		if less, decided := cheaperFirst(a, b, lossless.ReasonDrainForUpdate); decided {
			return firstIf(less)
		}
		return strings.Compare(a.Pod.Name, b.Pod.Name)
	})
	return old[:min(need, len(old))]
}

// cheaperFirst orders two candidates for an operation by what acting on
// them costs: a pod already draining for it first (finish what was begun),
// then one that is not ready (it serves nobody). decided is false when
// neither comes first, for the caller's own tie-break.
func cheaperFirst(a, b podState, drainReason string) (less, decided bool) {
	if x, y := a.drainingFor(drainReason), b.drainingFor(drainReason); x != y {
		return x, true
	}
	if a.Ready != b.Ready {
		return !a.Ready, true
	}
	return false, false
}

// drainingFor: the pod's drain for the operation has begun, through its
// gate or, for an update, by the set's slices dropping it.
func (p podState) drainingFor(reason string) bool {
	return p.DrainReason == reason || reason == lossless.ReasonDrainForUpdate && p.Dropped && !p.Updated
}

func isTerminating(p podState) bool { return p.Terminating }

func without(pods, remove []podState) []podState {
	if len(remove) == 0 {
		return pods
	}
	drop := map[*corev1.Pod]bool{}
	for _, p := range remove {
		drop[p.Pod] = true
	}
	out := make([]podState, 0, len(pods))
	for _, p := range pods {
		if !drop[p.Pod] {
			out = append(out, p)
		}
	}
	return out
}
