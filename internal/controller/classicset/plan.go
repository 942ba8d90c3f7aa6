package classicset

import (
	"cmp"
	"slices"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// instanceState is what the planner knows about one instance, gathered by
// the reconciler from the cache (and, for Drained, the API server).
type instanceState struct {
	Instance *cafev1alpha1.ClassicInstance
	// Updated: the instance runs the update revision's template (its
	// revision label says so).
	Updated bool
	// Terminating: deletion has begun.
	Terminating bool
	// Ready: its host's agent reports it healthy for its current spec, on
	// a Ready host. ReadySince is when it last became so.
	Ready      bool
	ReadySince time.Time
	// Gate is spec.trafficGate (Open when unset).
	Gate cafev1alpha1.ClassicTrafficGate
	// Drained: gate closed and nothing routes traffic to it.
	Drained bool
	// Holders, while it drains, say what still routes to it.
	Holders []string
	// Migrating: CAFE's node lifecycle asked it to leave its Failed host
	// (cafe.io/migration-requested).
	Migrating bool
	// SameArtifact: it already runs the update revision's package (with
	// the same command and environment): moving it to the revision changes
	// only its metadata, and its process keeps serving.
	SameArtifact bool
}

func (s instanceState) gateOpen() bool { return s.Gate == cafev1alpha1.ClassicTrafficGateOpen }

// planInput is the desired state and the observed instances.
type planInput struct {
	Replicas        int
	Partition       int
	MaxUnavailable  int
	MinReadySeconds time.Duration
	Paused          bool
	Now             time.Time
	Instances       []instanceState
}

// gateChange closes or opens one instance's gate.
type gateChange struct {
	Instance *cafev1alpha1.ClassicInstance
	Gate     cafev1alpha1.ClassicTrafficGate
}

// planResult lists the writes of one reconcile; each is idempotent.
type planResult struct {
	// Create is how many instances to place.
	Create int
	// Gates are gate changes: closes for an operation, opens after one.
	Gates []gateChange
	// Update are drained instances whose package moves to the update
	// revision.
	Update []*cafev1alpha1.ClassicInstance
	// Delete are drained surplus and migrated instances.
	Delete []*cafev1alpha1.ClassicInstance
	// RequeueAfter is when an instance's minReadySeconds will have passed.
	RequeueAfter time.Duration
	// Blocked says why an update waits (for status).
	Blocked string
	// Held names an instance whose drain traffic still holds.
	Held string
}

// plan decides the next writes for a ClassicSet:
//   - surplus instances (over replicas: already draining for deletion, not
//     ready, old revision, then the last by name) are drained and deleted
//     once drained;
//   - missing instances are placed (the reconciler picks the hosts);
//   - up to replicas − partition instances move to the update revision,
//     never more out of traffic at once than maxUnavailable counting every
//     instance that is not available or is closed; each is drained, then its
//     package changed; one that already runs the revision's package is
//     relabelled without a drain;
//   - an instance not (or no longer) to be operated on gets its gate opened
//     once it has been ready for minReadySeconds on its current spec;
//   - paused starts no drain; a drain not yet acted on is cancelled;
//   - an instance asked to migrate off its Failed host is replaced first
//     (it does not count towards replicas), then drained and deleted once
//     the set has its replicas available without it, paused or not; until
//     then it is updated like the others.
func plan(in planInput) planResult {
	var out planResult
	var active, migrating []instanceState
	for _, s := range in.Instances {
		switch {
		case s.Terminating:
		case s.Migrating:
			migrating = append(migrating, s)
		default:
			active = append(active, s)
		}
	}
	replicas := max(in.Replicas, 0)
	surplus := chooseSurplus(active, replicas)
	kept := without(active, surplus)
	out.Create = max(replicas-len(kept), 0)

	for _, s := range surplus {
		if in.Paused && s.Gate != cafev1alpha1.ClassicTrafficGateDrainForDelete {
			continue // scale-in waits for resume too; a drain already begun stays
		}
		out.drainAndDelete(s)
	}
	// Migrating instances stay until the set has its replicas available
	// without them; meanwhile a release updates them like the others (one
	// that has no other host to go to keeps serving the app's revision).
	if availableCount(kept, in) >= replicas {
		for _, s := range migrating {
			out.drainAndDelete(s)
		}
	} else {
		kept = append(kept, migrating...)
	}

	var toUpdate []instanceState
	if !in.Paused {
		toUpdate = chooseUpdates(kept, replicas-min(max(in.Partition, 0), replicas))
	}
	updating := map[*cafev1alpha1.ClassicInstance]bool{}
	for _, s := range toUpdate {
		updating[s.Instance] = true
	}
	budget := in.MaxUnavailable - out.unavailable(kept, in) - out.Create
	for _, s := range kept {
		if !updating[s.Instance] {
			out.maybeOpen(s, in)
		}
	}
	for _, s := range toUpdate {
		switch {
		case s.SameArtifact:
			// A revision that changes only labels (a pods-only release of
			// a mixed app) needs no drain: the process does not stop.
			out.Update = append(out.Update, s.Instance)
		case s.Gate != cafev1alpha1.ClassicTrafficGateDrainForUpdate:
			// Closing an instance that serves nobody takes nothing away.
			if in.available(s) {
				if budget <= 0 {
					if out.Blocked == "" {
						out.Blocked = "maxUnavailable reached: waiting for instances to become available before draining more"
					}
					continue
				}
				budget--
			}
			out.Gates = append(out.Gates, gateChange{s.Instance, cafev1alpha1.ClassicTrafficGateDrainForUpdate})
		case s.Drained:
			out.Update = append(out.Update, s.Instance)
		default:
			out.noteHeld(s)
		}
	}
	return out
}

// drainAndDelete closes s for deletion, and deletes it once drained.
func (out *planResult) drainAndDelete(s instanceState) {
	switch {
	case s.Gate != cafev1alpha1.ClassicTrafficGateDrainForDelete:
		out.Gates = append(out.Gates, gateChange{s.Instance, cafev1alpha1.ClassicTrafficGateDrainForDelete})
	case s.Drained:
		out.Delete = append(out.Delete, s.Instance)
	default:
		out.noteHeld(s)
	}
}

// availableCount counts the available instances of states.
func availableCount(states []instanceState, in planInput) int {
	n := 0
	for _, s := range states {
		if in.available(s) {
			n++
		}
	}
	return n
}

// available: ready with the gate open for at least minReadySeconds.
func (in planInput) available(s instanceState) bool {
	return s.Ready && s.gateOpen() && !s.ReadySince.Add(in.MinReadySeconds).After(in.Now)
}

// unavailable counts instances that are not available or are closed, and
// asks to be woken when a ready one becomes available.
func (out *planResult) unavailable(kept []instanceState, in planInput) int {
	n := 0
	for _, s := range kept {
		if in.available(s) {
			continue
		}
		n++
		if s.Ready && s.gateOpen() {
			out.requeueIn(s.ReadySince.Add(in.MinReadySeconds).Sub(in.Now))
		}
	}
	return n
}

// maybeOpen opens the gate of an instance that is not to be operated on,
// once it has been ready on its current spec for minReadySeconds; this also
// cancels a drain no longer wanted (a raised partition, a pause, a
// rollback to the revision it runs).
func (out *planResult) maybeOpen(s instanceState, in planInput) {
	if s.gateOpen() || !s.Ready {
		return
	}
	if wait := s.ReadySince.Add(in.MinReadySeconds).Sub(in.Now); wait > 0 {
		out.requeueIn(wait)
		return
	}
	out.Gates = append(out.Gates, gateChange{s.Instance, cafev1alpha1.ClassicTrafficGateOpen})
}

func (out *planResult) noteHeld(s instanceState) {
	if out.Held == "" && len(s.Holders) > 0 {
		out.Held = s.Instance.Name + " (held by " + s.Holders[0] + ")"
	}
}

// requeueIn keeps the earliest positive wake-up.
func (out *planResult) requeueIn(d time.Duration) {
	if d > 0 && (out.RequeueAfter == 0 || d < out.RequeueAfter) {
		out.RequeueAfter = d
	}
}

// chooseSurplus picks the instances over replicas to remove: those already
// draining for deletion, then not ready, then old revision, then the last
// by name (deterministic, so consecutive reconciles agree).
func chooseSurplus(active []instanceState, replicas int) []instanceState {
	n := len(active) - replicas
	if n <= 0 {
		return nil
	}
	sorted := slices.Clone(active)
	slices.SortStableFunc(sorted, func(a, b instanceState) int {
		if c := cheaperFirst(a, b, cafev1alpha1.ClassicTrafficGateDrainForDelete); c != 0 {
			return c
		}
		if a.Updated != b.Updated {
			return firstIf(!a.Updated)
		}
		return cmp.Compare(b.Instance.Name, a.Instance.Name)
	})
	return sorted[:n]
}

// chooseUpdates picks, in the order to act on them, the old-revision
// instances to move so that target run the update revision: those already
// draining for update first, then not ready ones, then by name.
func chooseUpdates(kept []instanceState, target int) []instanceState {
	var old []instanceState
	for _, s := range kept {
		if !s.Updated {
			old = append(old, s)
		}
	}
	need := target - (len(kept) - len(old))
	if need <= 0 {
		return nil
	}
	slices.SortStableFunc(old, func(a, b instanceState) int {
		if c := cheaperFirst(a, b, cafev1alpha1.ClassicTrafficGateDrainForUpdate); c != 0 {
			return c
		}
		return cmp.Compare(a.Instance.Name, b.Instance.Name)
	})
	return old[:min(need, len(old))]
}

// cheaperFirst orders two candidates for an operation: one already draining
// for it first, then one not ready (it serves nobody); 0 when neither.
func cheaperFirst(a, b instanceState, gate cafev1alpha1.ClassicTrafficGate) int {
	if x, y := a.Gate == gate, b.Gate == gate; x != y {
		return firstIf(x)
	}
	if a.Ready != b.Ready {
		return firstIf(!a.Ready)
	}
	return 0
}

// firstIf is a comparison result: -1 (a first) when aFirst, else 1.
func firstIf(aFirst bool) int {
	if aFirst {
		return -1
	}
	return 1
}

func without(all, remove []instanceState) []instanceState {
	if len(remove) == 0 {
		return all
	}
	drop := map[*cafev1alpha1.ClassicInstance]bool{}
	for _, s := range remove {
		drop[s.Instance] = true
	}
	out := make([]instanceState, 0, len(all))
	for _, s := range all {
		if !drop[s.Instance] {
			out = append(out, s)
		}
	}
	return out
}
