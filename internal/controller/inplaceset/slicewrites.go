package inplaceset

import (
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// sliceWrites remember the EndpointSlice writes of each set until the
// slice cache shows them. The slices are the state of a drain by slice, so
// a reconcile must never plan from an older version of them than the one
// it wrote last: with a set's pods spread over several slices, a write to
// one planned from a stale view of another could take more pods out of
// service than maxUnavailable allows. (A write to the slice it read stale
// fails on its resourceVersion.) Kept in memory: after a restart the cache
// is listed afresh, and nothing older than it exists.
type sliceWrites struct {
	mu   sync.Mutex
	sets map[types.UID]map[string]ownSlice
}

// ownSlice is one write: the slice as the API server answered it, or nil
// for a deletion of the version rv.
type ownSlice struct {
	slice *discoveryv1.EndpointSlice
	rv    uint64
	at    time.Time
}

// sliceWriteTTL bounds how long a write the cache does not show is
// believed over the cache (a slice deleted by someone else since).
const sliceWriteTTL = 30 * time.Second

func (w *sliceWrites) wrote(set *cafev1alpha1.InPlaceSet, slice *discoveryv1.EndpointSlice) {
	w.record(set.UID, slice.Name, ownSlice{slice: slice.DeepCopy(), rv: resourceVersion(slice.ResourceVersion), at: time.Now()})
}

func (w *sliceWrites) deleted(set *cafev1alpha1.InPlaceSet, slice *discoveryv1.EndpointSlice) {
	w.record(set.UID, slice.Name, ownSlice{rv: resourceVersion(slice.ResourceVersion), at: time.Now()})
}

func (w *sliceWrites) record(set types.UID, name string, s ownSlice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sets == nil {
		w.sets = map[types.UID]map[string]ownSlice{}
	}
	if w.sets[set] == nil {
		w.sets[set] = map[string]ownSlice{}
	}
	w.sets[set][name] = s
}

// forget drops a deleted set's records.
func (w *sliceWrites) forget(set types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.sets, set)
}

// newest merges the cached slices of set with its own writes: a write
// wins over an older cached version (or over none: a slice just created),
// a deletion hides the version it deleted; records the cache has caught up
// with, or that expired, are dropped.
func (w *sliceWrites) newest(set *cafev1alpha1.InPlaceSet, cached []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	w.mu.Lock()
	defer w.mu.Unlock()
	own := w.sets[set.UID]
	if len(own) == 0 {
		return cached
	}
	now := time.Now()
	out := make([]*discoveryv1.EndpointSlice, 0, len(cached)+len(own))
	seen := map[string]bool{}
	for _, c := range cached {
		seen[c.Name] = true
		o, ok := own[c.Name]
		switch {
		case !ok:
			out = append(out, c)
		case resourceVersion(c.ResourceVersion) > o.rv || (o.slice != nil && resourceVersion(c.ResourceVersion) == o.rv) || now.Sub(o.at) > sliceWriteTTL:
			delete(own, c.Name) // the cache has caught up
			out = append(out, c)
		case o.slice != nil:
			out = append(out, o.slice)
		}
	}
	for name, o := range own {
		switch {
		case seen[name]:
		case o.slice == nil || now.Sub(o.at) > sliceWriteTTL:
			delete(own, name) // deleted and gone from the cache too
		default:
			out = append(out, o.slice) // created, not cached yet
		}
	}
	return out
}

// resourceVersion reads an etcd-backed resourceVersion (0 if it is not a
// number: then the cache is always believed).
func resourceVersion(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}

// firstSeen remembers since when a condition has held for each pod, as
// seen by this process (status only: after a restart it starts again).
type firstSeen struct{ m sync.Map }

// since returns when the condition was first seen holding for the pod
// (now if just now); it forgets the pod once the condition does not hold.
func (f *firstSeen) since(uid types.UID, holds bool, now time.Time) time.Time {
	if !holds {
		f.m.Delete(uid)
		return time.Time{}
	}
	t, _ := f.m.LoadOrStore(uid, now)
	return t.(time.Time)
}
