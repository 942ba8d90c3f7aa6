package podset

import (
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/cafe-io/cafe/internal/lossless"
)

// onDeleteInput is one unit of podSetType StatefulSet (update strategy
// OnDelete: the StatefulSet recreates a deleted pod, with its ordinal and
// its claims, at the update revision; CAFE decides which pod goes when).
type onDeleteInput struct {
	Replicas       int32
	Target         int32 // pods that should run the update revision
	MaxUnavailable int32
	Paused         bool
	// Current is the StatefulSet's spec.replicas (0 before it exists).
	Current int32
	Pods    []nativePod
}

// onDeleteResult is the next writes for the unit.
type onDeleteResult struct {
	CloseGate  []lossless.GateChange
	ReopenGate []*corev1.Pod
	Delete     []*corev1.Pod
	// Replicas is the StatefulSet's spec.replicas.
	Replicas int32
}

// planOnDelete decides the next step of a unit's StatefulSet. The rules:
//   - scale-out sets the replicas at once; scale-in first drains every pod
//     whose ordinal is to go (not limited by maxUnavailable: it removes
//     capacity on purpose) and lowers the replicas once they all are
//     drained, so the StatefulSet deletes only drained pods;
//   - an update drains old-revision pods, highest ordinal first and
//     unavailable ones before that, while available pods stay at or above
//     Replicas−MaxUnavailable, and deletes each once drained; the
//     StatefulSet recreates it at the update revision, same name and claims;
//   - a drain for an update the plan no longer needs (a rollback) reopens;
//   - a pod whose deletion was requested is drained within budget and
//     deleted (planRequestedDeletions); the StatefulSet recreates it, at the
//     update revision;
//   - Paused starts no drain; drains already done still finish.
func planOnDelete(in onDeleteInput) onDeleteResult {
	res := onDeleteResult{Replicas: max(in.Current, in.Replicas)}
	target := min(in.Target, in.Replicas)

	var available, updated, inFlight int32
	var surplusPending bool
	var candidates, updating, requested []nativePod
	for _, p := range in.Pods {
		inRange := p.Ordinal >= 0 && int32(p.Ordinal) < in.Replicas
		switch {
		case p.Terminating:
			if inRange && !p.Updated {
				inFlight++ // recreated at the update revision
			}
			continue
		case !inRange:
			if !p.Drained {
				surplusPending = true
			}
			if p.DrainReason == "" && !in.Paused {
				res.CloseGate = append(res.CloseGate, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForDelete})
			}
			continue
		}
		if p.Available {
			available++
		}
		switch {
		case p.DeleteRequested:
			// Recreated at the update revision once deleted.
			requested = append(requested, p)
			if p.Updated {
				updated++
			} else {
				inFlight++
			}
		case p.DrainReason != "" && (p.Updated || p.DrainReason == lossless.ReasonDrainForDelete):
			// Drained for an update or a scale-in the plan no longer makes.
			res.ReopenGate = append(res.ReopenGate, p.Pod)
			if p.Updated {
				updated++
			}
		case p.Updated:
			updated++
		case p.DrainReason != "":
			updating = append(updating, p)
		default:
			candidates = append(candidates, p)
		}
	}
	if in.Current > in.Replicas && !surplusPending {
		res.Replicas = in.Replicas
	}
	budget := available - (in.Replicas - in.MaxUnavailable)
	requestedGates, requestedDeletes := planRequestedDeletions(requested, &budget, in.Paused)
	res.CloseGate, res.Delete = append(res.CloseGate, requestedGates...), append(res.Delete, requestedDeletes...)

	need := target - updated - inFlight
	sort.SliceStable(updating, func(i, j int) bool { return updating[i].Drained && !updating[j].Drained })
	for i, p := range updating {
		switch {
		case int32(i) >= need:
			res.ReopenGate = append(res.ReopenGate, p.Pod)
		case p.Drained:
			res.Delete = append(res.Delete, p.Pod)
		}
	}
	need -= int32(len(updating))
	if in.Paused || need <= 0 {
		return res
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if a.Available != b.Available {
			return !a.Available
		}
		return a.Ordinal > b.Ordinal
	})
	for _, p := range candidates {
		if need == 0 {
			break
		}
		if p.Available {
			if budget <= 0 {
				continue
			}
			budget--
		}
		res.CloseGate = append(res.CloseGate, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForUpdate})
		need--
	}
	return res
}
