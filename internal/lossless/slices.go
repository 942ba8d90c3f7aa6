package lossless

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/cafe-io/cafe/internal/podutil"
)

// Slices reads the EndpointSlices that list a pod, for the drain check
// (step 2 of the protocol), from a cache that must not be older than the
// pod it judges.
//
// Only the namespaces where CAFE manages pods are watched: one EndpointSlice
// informer per namespace, started when CAFE's pod cache (its own pods only)
// first holds a pod there, or when a drain check asks, and stopped once the
// namespace has had none of CAFE's pods for idleAfter. A Service selects
// pods of its own namespace only, so these are the slices that can list
// CAFE's pods; a release of another controller's pods in another namespace
// sends CAFE no slice event (issue 14).
//
// The pod and EndpointSlice watches are separate streams, and under load
// the slice stream can lag the pod stream (a 10,000-pod run once showed
// images patched while the endpointslice controller had, half a second
// earlier, listed the pods ready again). A controller that reads its own
// gate-close back from the pod cache, and beside it a slice cache from
// before a slice write that listed the pod ready, would call the pod
// drained. So a "drained" read from the cache counts only when the
// namespace's slice informer has delivered an event at least as recent as
// the pod's resourceVersion; otherwise the listed slices are read again
// from the API server. That compares resourceVersions of two resources:
// both live in the same etcd (the default; apiserver storage overrides are
// used for Events), whose revision orders every write. A cached "still
// held" needs no such check: it only delays, and the slice event that
// changes it wakes the drain's owner (Source).
type Slices struct {
	client kubernetes.Interface
	api    client.Reader
	// pods is CAFE's pod cache: a namespace without any of its pods
	// needs no slice watch.
	pods      toolscache.Indexer
	idleAfter time.Duration

	// started is closed once Start has run: drain checks wait for it.
	started chan struct{}

	mu sync.Mutex
	// ctx is the manager's, from Start; namespaces asked for before
	// then start with it.
	ctx       context.Context
	spaces    map[string]*namespaceSlices
	listeners []*sliceListener
}

// namespaceSlices is one namespace's slice informer.
type namespaceSlices struct {
	informer toolscache.SharedIndexInformer
	// store is what the drain check reads: the informer's indexer (tests
	// put a frozen one in its place to play a lagging watch).
	store toolscache.Indexer
	// ctx ends when the watch is released (cancel).
	ctx    context.Context
	cancel context.CancelFunc
	// seen is the highest resourceVersion of an EndpointSlice event the
	// informer has delivered to its handlers (the informer updates its
	// store before it notifies, so the store is at least that recent).
	seen atomic.Uint64
}

// sliceListener is a controller's watch of every namespace's slices.
type sliceListener struct {
	mapFn func(context.Context, client.Object) []reconcile.Request
	queue workqueue.TypedRateLimitingInterface[reconcile.Request]
}

// DefaultSliceWatchIdle is how long a namespace's slice watch outlives the
// last of CAFE's pods there (a release that replaces every pod does not
// stop and restart it).
const DefaultSliceWatchIdle = 2 * time.Minute

// errNotStarted: a drain check before the manager started Slices.
var errNotStarted = errors.New("the EndpointSlice watches have not started yet")

// SetupSlices builds the manager's Slices: slice watches follow CAFE's pod
// cache (mgr's, label-selected), slices are re-read through mgr's API
// reader, and the manager starts and stops the watches. Call it once per
// manager, before the controllers and webhooks that drain pods start.
func SetupSlices(ctx context.Context, mgr manager.Manager) (*Slices, error) {
	podInformer, pods, err := podutil.CachedPods(ctx, mgr.GetCache())
	if err != nil {
		return nil, err
	}
	s, err := NewSlices(mgr.GetConfig(), mgr.GetAPIReader(), pods)
	if err != nil {
		return nil, err
	}
	if _, err := podInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.podAdded(obj) },
		DeleteFunc: func(obj any) { s.podDeleted(obj) },
	}); err != nil {
		return nil, fmt.Errorf("following CAFE's pods for the EndpointSlice watches: %w", err)
	}
	if err := mgr.Add(s); err != nil {
		return nil, fmt.Errorf("adding the EndpointSlice watches to the manager: %w", err)
	}
	return s, nil
}

// NewSlices returns Slices that watch through cfg (protobuf), re-read
// through api, and stop a namespace's watch when pods (CAFE's pod cache)
// holds none of its pods. It watches nothing until Start.
func NewSlices(cfg *rest.Config, api client.Reader, pods toolscache.Indexer) (*Slices, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the EndpointSlice client: %w", err)
	}
	return &Slices{client: cs, api: api, pods: pods, idleAfter: DefaultSliceWatchIdle, started: make(chan struct{}), spaces: map[string]*namespaceSlices{}}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica's webhooks check drains, leader or not.
func (s *Slices) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable: it starts the namespaces asked for so
// far, and stops every watch when ctx ends.
func (s *Slices) Start(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	for ns, space := range s.spaces {
		s.run(ns, space)
	}
	s.mu.Unlock()
	close(s.started)
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for ns, space := range s.spaces {
		if space.cancel != nil {
			space.cancel()
		}
		delete(s.spaces, ns)
	}
	watchedNamespaces.Set(0)
	return nil
}

// Source is a controller's watch of the slices of every watched namespace:
// each slice event (old and new on an update) goes through mapFn into the
// controller's queue. Slices already cached are replayed as added.
func (s *Slices) Source(mapFn func(context.Context, client.Object) []reconcile.Request) source.Source {
	return source.Func(func(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		l := &sliceListener{mapFn: mapFn, queue: queue}
		s.mu.Lock()
		s.listeners = append(s.listeners, l)
		spaces := make([]*namespaceSlices, 0, len(s.spaces))
		for _, space := range s.spaces {
			spaces = append(spaces, space)
		}
		s.mu.Unlock()
		for _, space := range spaces {
			for _, obj := range space.store.List() {
				l.enqueue(ctx, obj)
			}
		}
		return nil
	})
}

func (l *sliceListener) enqueue(ctx context.Context, obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	for _, req := range l.mapFn(ctx, slice) {
		l.queue.Add(req)
	}
}

// ForPod returns the EndpointSlices that list the pod: the cache's own
// objects (read them, never modify them) when they may be trusted, else
// fresh copies of the same slices read from the API server (see Slices).
// A namespace not watched yet is watched first, and read once synced.
func (s *Slices) ForPod(ctx context.Context, pod *corev1.Pod) ([]discoveryv1.EndpointSlice, error) {
	space, err := s.synced(ctx, pod.Namespace)
	if err != nil {
		return nil, fmt.Errorf("listing EndpointSlices of pod %s: %w", client.ObjectKeyFromObject(pod), err)
	}
	objs, err := space.store.ByIndex(EndpointSlicePodIndex, pod.Name)
	if err != nil {
		return nil, fmt.Errorf("listing EndpointSlices of pod %s: %w", client.ObjectKeyFromObject(pod), err)
	}
	slices := make([]discoveryv1.EndpointSlice, 0, len(objs))
	for _, obj := range objs {
		if slice, ok := obj.(*discoveryv1.EndpointSlice); ok {
			slices = append(slices, *slice)
		}
	}
	if trustable(pod, slices, space.seen.Load()) {
		return slices, nil
	}
	return s.reread(ctx, slices)
}

// ControlledBy returns the cached EndpointSlices whose controller is owner
// (read them, never modify them): the slices a pod set writes itself. The
// cache may lag the owner's own writes; the owner keeps what it wrote.
func (s *Slices) ControlledBy(ctx context.Context, owner metav1.Object) ([]*discoveryv1.EndpointSlice, error) {
	space, err := s.synced(ctx, owner.GetNamespace())
	if err != nil {
		return nil, fmt.Errorf("listing the EndpointSlices of %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
	}
	objs, err := space.store.ByIndex(endpointSliceControllerIndex, string(owner.GetUID()))
	if err != nil {
		return nil, fmt.Errorf("listing the EndpointSlices of %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, obj := range objs {
		if slice, ok := obj.(*discoveryv1.EndpointSlice); ok {
			out = append(out, slice)
		}
	}
	return out, nil
}

// synced returns the namespace's watch once its first list is in.
func (s *Slices) synced(ctx context.Context, ns string) (*namespaceSlices, error) {
	select {
	case <-s.started:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errNotStarted, context.Cause(ctx))
	}
	for {
		s.mu.Lock()
		space := s.watch(ns)
		s.mu.Unlock()
		if waitSynced(ctx, space) {
			return space, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the EndpointSlices of namespace %s are not synced yet: %w", ns, context.Cause(ctx))
		}
		// Released before it synced (the namespace had none of CAFE's
		// pods for idleAfter): watch it again.
	}
}

// waitSynced waits until the namespace's first list is in; false if ctx
// ends or the watch is released first.
func waitSynced(ctx context.Context, space *namespaceSlices) bool {
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(space.ctx, cancel)
	defer stop()
	return toolscache.WaitForCacheSync(waitCtx.Done(), space.informer.HasSynced)
}

// trustable: the cached slices hold the pod (a verdict that only waits),
// or the slice cache is at least as recent as the pod as read.
func trustable(pod *corev1.Pod, slices []discoveryv1.EndpointSlice, seen uint64) bool {
	if len(slices) == 0 || heldBySlices(pod, slices) {
		return true
	}
	rv, err := strconv.ParseUint(pod.ResourceVersion, 10, 64)
	return err == nil && seen >= rv
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

// watch returns the namespace's watch, creating it (and running it once
// Start has run) if there is none. s.mu must be held.
func (s *Slices) watch(ns string) *namespaceSlices {
	if space, ok := s.spaces[ns]; ok {
		return space
	}
	space := &namespaceSlices{}
	space.informer = discoveryinformers.NewEndpointSliceInformer(s.client, ns, 0, toolscache.Indexers{EndpointSlicePodIndex: indexSlicesByPod, endpointSliceControllerIndex: indexSlicesByController})
	space.store = space.informer.GetIndexer()
	// Nothing reads who wrote a slice; a slice's managedFields are as
	// large as its endpoints.
	_ = space.informer.SetTransform(stripManagedFields)
	_, _ = space.informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.delivered(space, obj) },
		UpdateFunc: func(old, obj any) { s.delivered(space, old, obj) },
		DeleteFunc: func(obj any) { s.delivered(space, obj) },
	})
	s.spaces[ns] = space
	watchedNamespaces.Set(float64(len(s.spaces)))
	if s.ctx != nil {
		s.run(ns, space)
	}
	if s.podsIn(ns) == 0 {
		// Asked for by a drain check before the pod cache had the pod
		// (or for a namespace CAFE has no pod in): released like any
		// other namespace once it has none of CAFE's pods.
		s.releaseLater(ns)
	}
	return space
}

// run starts the namespace's informer under the manager's context.
// s.mu must be held and s.ctx set.
func (s *Slices) run(ns string, space *namespaceSlices) {
	space.ctx, space.cancel = context.WithCancel(s.ctx)
	log.FromContext(s.ctx).V(1).Info("watching EndpointSlices", "namespace", ns)
	go space.informer.RunWithContext(space.ctx)
}

// delivered records the informer's progress and hands the event to every
// listener. The event's last object carries its resourceVersion.
func (s *Slices) delivered(space *namespaceSlices, objs ...any) {
	space.observe(objs[len(objs)-1])
	s.mu.Lock()
	listeners, ctx := s.listeners, s.ctx
	s.mu.Unlock()
	for _, l := range listeners {
		for _, obj := range objs {
			l.enqueue(ctx, obj)
		}
	}
}

// observe raises seen to the event's resourceVersion.
func (space *namespaceSlices) observe(obj any) {
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
		cur := space.seen.Load()
		if rv <= cur || space.seen.CompareAndSwap(cur, rv) {
			return
		}
	}
}

// podAdded watches the namespace of one of CAFE's pods.
func (s *Slices) podAdded(obj any) {
	pod, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	s.mu.Lock()
	s.watch(pod.GetNamespace())
	s.mu.Unlock()
}

// podDeleted stops the namespace's watch idleAfter after its last pod
// went, unless one came back meanwhile.
func (s *Slices) podDeleted(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(metav1.Object)
	if !ok || s.podsIn(pod.GetNamespace()) > 0 {
		return
	}
	s.releaseLater(pod.GetNamespace())
}

// releaseLater releases the namespace's watch idleAfter from now.
func (s *Slices) releaseLater(ns string) {
	time.AfterFunc(s.idleAfter, func() { s.release(ns) })
}

// release stops the namespace's watch if none of CAFE's pods is there.
func (s *Slices) release(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	space, ok := s.spaces[ns]
	if !ok || s.podsIn(ns) > 0 {
		return
	}
	if space.cancel != nil {
		space.cancel()
	}
	delete(s.spaces, ns)
	watchedNamespaces.Set(float64(len(s.spaces)))
}

// podsIn counts CAFE's cached pods in the namespace.
func (s *Slices) podsIn(ns string) int {
	keys, err := s.pods.IndexKeys(toolscache.NamespaceIndex, ns)
	if err != nil {
		// No namespace index: keep watching rather than guess.
		return 1
	}
	return len(keys)
}

// indexSlicesByPod is IndexEndpointSlicesByPod for a client-go indexer.
func indexSlicesByPod(obj any) ([]string, error) {
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	return IndexEndpointSlicesByPod(slice), nil
}

// endpointSliceControllerIndex indexes slices by their controller's UID.
const endpointSliceControllerIndex = "cafe.io/endpointslice-controller"

func indexSlicesByController(obj any) ([]string, error) {
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(slice); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

// stripManagedFields drops managedFields before an object is cached.
func stripManagedFields(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}
