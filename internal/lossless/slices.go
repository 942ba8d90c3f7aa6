package lossless

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Slices reads the EndpointSlices that list a pod, for the drain check
// (step 2 of the protocol), from a cache that must not be older than the
// pod it judges.
//
// The pod and EndpointSlice watches are separate streams, and under load
// the slice stream can lag the pod stream (a 10,000-pod run once showed
// images patched while the endpointslice controller had, half a second
// earlier, listed the pods ready again). A controller that reads its own
// gate-close back from the pod cache, and beside it a slice cache from
// before a slice write that listed the pod ready, would call the pod
// drained. So a "drained" read from the cache counts only when the slice
// cache has delivered an event at least as recent as the pod's
// resourceVersion; otherwise the listed slices are read again from the API
// server. That compares resourceVersions of two resources: both live in the
// same etcd (the default; apiserver storage overrides are used for Events),
// whose revision orders every write. A cached "still held" needs no such
// check: it only delays, and the slice event that changes it wakes the
// drain's owner (EnqueueOwnersOfSlicePods).
type Slices struct {
	cache client.Reader
	api   client.Reader
	// seen is the highest resourceVersion of an EndpointSlice event the
	// cache's informer has delivered to its handlers (the informer updates
	// its store before it notifies, so the store is at least that recent).
	seen atomic.Uint64
}

// SetupSlices registers the EndpointSlice index and the informer handler
// Slices needs on c, and returns the reader. cached reads c (the manager's
// client), api reads the API server. Call it once per manager, before the
// controllers and webhooks that drain pods start.
func SetupSlices(ctx context.Context, c cache.Cache, cached, api client.Reader) (*Slices, error) {
	if err := c.IndexField(ctx, &discoveryv1.EndpointSlice{}, EndpointSlicePodIndex, IndexEndpointSlicesByPod); err != nil {
		return nil, fmt.Errorf("indexing EndpointSlices by pod: %w", err)
	}
	informer, err := c.GetInformer(ctx, &discoveryv1.EndpointSlice{})
	if err != nil {
		return nil, fmt.Errorf("getting the EndpointSlice informer: %w", err)
	}
	s := &Slices{cache: cached, api: api}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.observe,
		UpdateFunc: func(_, obj any) { s.observe(obj) },
		DeleteFunc: s.observe,
	}); err != nil {
		return nil, fmt.Errorf("watching EndpointSlice progress: %w", err)
	}
	return s, nil
}

// observe raises seen to the event's resourceVersion.
func (s *Slices) observe(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	rv, err := strconv.ParseUint(slice.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	for {
		cur := s.seen.Load()
		if rv <= cur || s.seen.CompareAndSwap(cur, rv) {
			return
		}
	}
}

// ForPod returns the EndpointSlices that list the pod: the cache's own
// objects (read them, never modify them) when they may be trusted, else
// fresh copies of the same slices read from the API server (see Slices).
func (s *Slices) ForPod(ctx context.Context, pod *corev1.Pod) ([]discoveryv1.EndpointSlice, error) {
	slices, err := cachedSlicesForPod(ctx, s.cache, pod)
	if err != nil || s.trustable(pod, slices) {
		return slices, err
	}
	return s.reread(ctx, slices)
}

// trustable: the cached slices hold the pod (a verdict that only waits),
// or the slice cache is at least as recent as the pod as read.
func (s *Slices) trustable(pod *corev1.Pod, slices []discoveryv1.EndpointSlice) bool {
	if len(slices) == 0 || heldBySlices(pod, slices) {
		return true
	}
	rv, err := strconv.ParseUint(pod.ResourceVersion, 10, 64)
	return err == nil && s.seen.Load() >= rv
}

// reread reads each slice from the API server; a slice deleted since lists
// nobody and is left out.
func (s *Slices) reread(ctx context.Context, cached []discoveryv1.EndpointSlice) ([]discoveryv1.EndpointSlice, error) {
	fresh := make([]discoveryv1.EndpointSlice, 0, len(cached))
	for i := range cached {
		sliceAPIReads.Inc()
		slice := &discoveryv1.EndpointSlice{}
		err := s.api.Get(ctx, client.ObjectKeyFromObject(&cached[i]), slice)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading EndpointSlice %s from the API server (the cache is behind the pod): %w", client.ObjectKeyFromObject(&cached[i]), err)
		}
		fresh = append(fresh, *slice)
	}
	return fresh, nil
}
