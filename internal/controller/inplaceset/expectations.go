package inplaceset

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// expectationTTL bounds how long a write not yet seen in the cache hides
// a pod's cached state. Past it the cache is believed again and the write
// may be repeated (harmless: every write is idempotent).
const expectationTTL = 30 * time.Second

// expectation is a write this controller made to a pod and has not yet
// seen in its cache.
type expectation struct {
	// Gate is the traffic-ready status written ("" when none), with Reason.
	Gate   corev1.ConditionStatus
	Reason string
	// Revision is the revision an in-place update moved the pod to.
	Revision string
	// Deleted: the pod's deletion was requested.
	Deleted bool
	At      time.Time
}

// expectations remember the pod writes of recent reconciles until the cache
// shows them. A reconcile that runs before the watch delivered its
// predecessor's writes would otherwise plan them again: at release scale
// those repeats were a third of a write per pod (`make bench`). This is an
// optimisation only, kept in memory like the ReplicaSet controller's
// expectations: after a restart it is empty and the level-based plan, read
// from the API, is as correct as before, at the cost of maybe repeating a
// write.
type expectations struct {
	mu        sync.Mutex
	pods      map[types.UID]expectation
	lastSweep time.Time
}

// expect records a write to the pod, merged with earlier unseen ones.
func (e *expectations) expect(uid types.UID, now time.Time, set func(*expectation)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pods == nil {
		e.pods = map[types.UID]expectation{}
	}
	e.sweep(now)
	x := e.pods[uid]
	set(&x)
	x.At = now
	e.pods[uid] = x
}

// sweep drops, once per expectationTTL, the records that expired: those of
// pods gone before their writes were seen.
func (e *expectations) sweep(now time.Time) {
	if now.Sub(e.lastSweep) < expectationTTL {
		return
	}
	e.lastSweep = now
	for uid, x := range e.pods {
		if now.Sub(x.At) > expectationTTL {
			delete(e.pods, uid)
		}
	}
}

// apply overlays on st what this controller wrote to its pod and the cache
// does not show yet, and forgets writes the cache has caught up with (or
// that are older than expectationTTL).
func (e *expectations) apply(st *podState, updateHash string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	uid := st.Pod.UID
	x, ok := e.pods[uid]
	if !ok {
		return
	}
	if now.Sub(x.At) > expectationTTL || x.seenIn(st.Pod) {
		delete(e.pods, uid)
		return
	}
	x.overlay(st, updateHash)
}

// seenIn reports whether the cached pod reflects every write recorded.
func (x expectation) seenIn(pod *corev1.Pod) bool {
	if x.Deleted && pod.DeletionTimestamp.IsZero() {
		return false
	}
	if x.Revision != "" && pod.Labels[cafev1alpha1.RevisionHashLabel] != x.Revision {
		return false
	}
	if x.Gate != "" {
		g := lossless.Gate(pod)
		if g == nil || g.Status != x.Gate || (x.Gate == corev1.ConditionFalse && g.Reason != x.Reason) {
			return false
		}
	}
	return true
}

// overlay makes st what it will be once the cache shows the writes: a gate
// closed for an operation is draining (not yet drained: the slices are not
// known to have let go), an opened gate is open, an in-place update is
// applied and awaits the kubelet, a deletion is under way.
func (x expectation) overlay(st *podState, updateHash string) {
	switch x.Gate {
	case corev1.ConditionFalse:
		st.GateOpen, st.DrainReason, st.Drained = false, x.Reason, false
	case corev1.ConditionTrue:
		st.GateOpen, st.DrainReason, st.Drained = true, "", false
	}
	if x.Revision != "" {
		st.Updated, st.InPlacePending = x.Revision == updateHash, true
	}
	if x.Deleted {
		st.Terminating = true
	}
}
