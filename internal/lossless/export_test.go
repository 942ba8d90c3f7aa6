package lossless

import (
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// FreezeSliceCache makes the drain check read ns's slices from a store
// holding only cached, while the namespace's informer goes on recording
// real progress: a watch that lags, which a real one cannot be made to do
// on demand.
func (s *Slices) FreezeSliceCache(ns string, cached ...*discoveryv1.EndpointSlice) error {
	store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{EndpointSlicePodIndex: indexSlicesByPod})
	for _, slice := range cached {
		if err := store.Add(slice); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch(ns).store = store
	return nil
}

// WatchedNamespaces lists the namespaces whose slices are watched.
func (s *Slices) WatchedNamespaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for ns := range s.spaces {
		out = append(out, ns)
	}
	return out
}

// SetSliceWatchIdle sets how long a namespace's watch outlives CAFE's last
// pod there. Call it before the manager starts.
func (s *Slices) SetSliceWatchIdle(d time.Duration) { s.idleAfter = d }
