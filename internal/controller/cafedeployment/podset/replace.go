package podset

import (
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/cafe-io/cafe/internal/lossless"
)

// replaceInput is one unit of podSetType ReplicaSet: its settings, its pods
// and its ReplicaSets' current replicas.
type replaceInput struct {
	Replicas       int32
	Target         int32 // pods that should run the update revision
	MaxUnavailable int32
	MaxSurge       int32
	Paused         bool
	// NewSet names the update revision's ReplicaSet; OldSets the others,
	// with their spec.replicas.
	NewSet     string
	NewCurrent int32
	OldSets    map[string]int32
	Pods       []nativePod
}

// replaceResult is the next writes for the unit: gates to close and
// reopen, drained pods to mark, and every ReplicaSet's replicas.
type replaceResult struct {
	CloseGate  []lossless.GateChange
	ReopenGate []*corev1.Pod
	Mark       []*corev1.Pod
	// Delete are drained pods whose deletion was requested: deleted
	// directly, their ReplicaSet replaces them.
	Delete      []*corev1.Pod
	NewReplicas int32
	OldReplicas map[string]int32
}

// planReplace decides how a unit's ReplicaSets move towards Target pods of
// the update revision, losslessly. A pod leaves only through its own
// ReplicaSet's scale-down, and only once drained and marked with the lowest
// deletion cost, so the ReplicaSet controller deletes exactly it (it ranks
// not-ready pods, then lower deletion costs, first). The rules:
//   - each side (the new ReplicaSet, the old ones) keeps its desired count:
//     Target new pods and Replicas−Target old ones; a side with more drains
//     its surplus (unavailable pods first), one with fewer scales up;
//   - closing the gate of an available pod needs budget: available pods may
//     not fall below Replicas−MaxUnavailable;
//   - the new ReplicaSet scales up only while all ReplicaSets together stay
//     within Replicas+MaxSurge, so without surge a new pod follows an old
//     one's removal, as in a Deployment's rolling update;
//   - a pod drained for deletion that the plan no longer removes (a
//     rollback, a scale-out) gets its gate back;
//   - a pod whose deletion was requested is drained within budget and
//     deleted, its ReplicaSet replaces it (planRequestedDeletions); it
//     counts as its side's until it goes;
//   - Paused starts no drain; drains already done still finish.
func planReplace(in replaceInput) replaceResult {
	res := replaceResult{OldReplicas: map[string]int32{}}
	desiredNew := min(in.Target, in.Replicas)
	desiredOld := in.Replicas - desiredNew

	var newPods, oldPods []nativePod
	available := int32(0)
	for _, p := range in.Pods {
		if p.Terminating {
			continue
		}
		if p.Available {
			available++
		}
		if p.Updated {
			newPods = append(newPods, p)
		} else {
			oldPods = append(oldPods, p)
		}
	}
	budget := available - (in.Replicas - in.MaxUnavailable)
	requestedGates, requestedDeletes := planRequestedDeletions(in.Pods, &budget, in.Paused)
	res.CloseGate, res.Delete = append(res.CloseGate, requestedGates...), requestedDeletes

	newKeep := trimSide(&res, newPods, desiredNew, &budget, in.Paused)
	oldKeep := trimSide(&res, oldPods, desiredOld, &budget, in.Paused)

	// Old ReplicaSets drop exactly the pods marked for removal; pods they are
	// still creating are not cancelled.
	var totalOld int32
	for name, current := range in.OldSets {
		n := min(current, ownedBy(oldKeep, name))
		res.OldReplicas[name] = n
		totalOld += n
	}
	// A partial release that scales out keeps the old revision's share.
	if deficit := desiredOld - totalOld; deficit > 0 && len(in.OldSets) > 0 {
		name := largest(res.OldReplicas)
		res.OldReplicas[name] += deficit
		totalOld += deficit
	}

	// The new ReplicaSet: down to the pods it keeps when it has enough (a
	// scale-in drops exactly its marked pods), otherwise up within the surge
	// limit, never cancelling pods it is already creating.
	keptNew := int32(len(newKeep))
	if keptNew >= desiredNew {
		res.NewReplicas = keptNew
	} else {
		res.NewReplicas = max(keptNew, min(desiredNew, max(in.NewCurrent, in.Replicas+in.MaxSurge-totalOld)))
	}
	return res
}

// trimSide keeps want pods of one side: it marks drained surplus pods,
// closes the gates of further surplus pods within budget, and reopens
// drains the plan no longer needs. It returns the pods the side keeps
// (every pod not marked).
func trimSide(res *replaceResult, pods []nativePod, want int32, budget *int32, paused bool) []nativePod {
	var keep, draining, idle []nativePod
	for _, p := range pods {
		switch {
		case p.Marked:
			continue
		case p.DeleteRequested:
			// planRequestedDeletions drains and deletes it.
			keep = append(keep, p)
			want--
		case p.DrainReason == lossless.ReasonDrainForDelete:
			draining = append(draining, p)
		default:
			idle = append(idle, p)
		}
	}
	surplus := int32(len(draining)+len(idle)) - want
	// Drained pods first: they are the cheapest to finish.
	sort.SliceStable(draining, func(i, j int) bool { return draining[i].Drained && !draining[j].Drained })
	for i, p := range draining {
		switch {
		case int32(i) >= surplus:
			res.ReopenGate = append(res.ReopenGate, p.Pod)
			keep = append(keep, p)
		case p.Drained:
			res.Mark = append(res.Mark, p.Pod)
		default:
			keep = append(keep, p)
		}
	}
	// Unavailable pods first: draining them costs no capacity.
	sort.SliceStable(idle, func(i, j int) bool { return !idle[i].Available && idle[j].Available })
	need := surplus - int32(len(draining))
	for _, p := range idle {
		if need > 0 && !paused && (!p.Available || *budget > 0) {
			if p.Available {
				*budget--
			}
			res.CloseGate = append(res.CloseGate, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForDelete})
			need--
		}
		keep = append(keep, p)
	}
	return keep
}

func ownedBy(pods []nativePod, owner string) int32 {
	var n int32
	for _, p := range pods {
		if p.Owner == owner {
			n++
		}
	}
	return n
}

// largest names the ReplicaSet with the most replicas (ties: by name).
func largest(sets map[string]int32) string {
	names := make([]string, 0, len(sets))
	for n := range sets {
		names = append(names, n)
	}
	sort.Strings(names)
	best := names[0]
	for _, n := range names[1:] {
		if sets[n] > sets[best] {
			best = n
		}
	}
	return best
}
