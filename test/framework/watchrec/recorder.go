package watchrec

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Option configures a [Recorder].
type Option func(*options)

type options struct {
	podSelector   labels.Selector
	sliceSelector labels.Selector
	log           logr.Logger
	minBackoff    time.Duration
	maxBackoff    time.Duration
	pollInterval  time.Duration
}

func defaultOptions() options {
	return options{
		podSelector:   labels.Everything(),
		sliceSelector: labels.Everything(),
		log:           logr.Discard(),
		minBackoff:    100 * time.Millisecond,
		maxBackoff:    5 * time.Second,
		pollInterval:  20 * time.Millisecond,
	}
}

// WithPodSelector records only the pods whose labels match selector. A pod that stops
// matching is recorded as a Modified event with LeftFilter set.
func WithPodSelector(selector labels.Selector) Option {
	return func(o *options) {
		if selector != nil {
			o.podSelector = selector
		}
	}
}

// WithEndpointSliceSelector records only the EndpointSlices whose labels match selector,
// for example those of one Service (discoveryv1.LabelServiceName). [CheckLossless] only
// knows the slices that were recorded.
func WithEndpointSliceSelector(selector labels.Selector) Option {
	return func(o *options) {
		if selector != nil {
			o.sliceSelector = selector
		}
	}
}

// WithLogger logs watch failures and re-lists to log (discarded by default).
func WithLogger(log logr.Logger) Option {
	return func(o *options) { o.log = log }
}

// Recorder keeps the ordered log of the Pod and EndpointSlice events of one namespace.
// It is safe for concurrent use.
type Recorder struct {
	namespace string
	opts      options
	resources []*resource

	mu     sync.Mutex
	seq    uint64
	events []Event
	// state is the last recorded version of every live object, by kind and name; it
	// lets a re-list tell what changed during a gap, and WaitForSync tell whether the
	// watch is caught up.
	state map[Kind]map[string]runtime.Object
	// progress is the highest resource version each watch has reached, bookmarks
	// included.
	progress map[Kind]uint64
	// baseline is the resource version of the later initial list. Before it only one
	// kind's history is known (the other kind was not listed yet), so watch events up
	// to it are recorded as Synthetic: part of the initial state, not judged.
	baseline uint64

	// stopped is closed when the recorder stops, by Stop or by the end of Start's ctx.
	stopped  <-chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// resource is what the recorder needs to list and watch one kind.
type resource struct {
	kind     Kind
	selector labels.Selector
	list     func(ctx context.Context, opts metav1.ListOptions) (items []runtime.Object, resourceVersion string, err error)
	watch    func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// Start records the Pods and EndpointSlices of namespace through a client built from
// cfg. It returns once both initial lists are in the log, and records until ctx is done
// or [Recorder.Stop] is called.
func Start(ctx context.Context, cfg *rest.Config, namespace string, opts ...Option) (*Recorder, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the client: %w", err)
	}
	return StartWithClient(ctx, client, namespace, opts...)
}

// StartWithClient is [Start] with a client the caller already has.
func StartWithClient(ctx context.Context, client kubernetes.Interface, namespace string, opts ...Option) (*Recorder, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	r := &Recorder{
		namespace: namespace,
		opts:      o,
		state:     map[Kind]map[string]runtime.Object{KindPod: {}, KindEndpointSlice: {}},
		progress:  map[Kind]uint64{},
	}
	pods := client.CoreV1().Pods(namespace)
	endpointSlices := client.DiscoveryV1().EndpointSlices(namespace)
	r.resources = []*resource{
		{
			kind:     KindPod,
			selector: o.podSelector,
			list:     listOf(pods.List),
			watch:    pods.Watch,
		},
		{
			kind:     KindEndpointSlice,
			selector: o.sliceSelector,
			list:     listOf(endpointSlices.List),
			watch:    endpointSlices.Watch,
		},
	}

	// List both kinds before watching either, so that Start returns with both initial
	// states in the log.
	from := make([]uint64, len(r.resources))
	for i, res := range r.resources {
		rv, err := r.initialList(ctx, res)
		if err != nil {
			return nil, err
		}
		from[i] = rv
		r.baseline = max(r.baseline, rv)
	}
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel, r.stopped = cancel, runCtx.Done()
	for i, res := range r.resources {
		r.wg.Add(1)
		go r.run(runCtx, res, from[i])
	}
	return r, nil
}

// Stop stops recording and waits for the watches to end. It may be called more than
// once; the log stays readable.
func (r *Recorder) Stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
	})
}

// Events returns a deep copy of the log, sorted by resource version (see
// [SortEvents]).
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	out := make([]Event, len(r.events))
	for i, ev := range r.events {
		out[i] = ev.DeepCopy()
	}
	r.mu.Unlock()
	SortEvents(out)
	return out
}

// WaitForSync waits until the log holds every change the API server had committed, to
// the recorded kinds, when WaitForSync was called: call it before checking, so that the
// last events of one watch are not judged against a stale view of the other.
//
// For each kind it reads the current resource version with a consistent LIST and waits
// until the watch has reached it (with an event or a bookmark), or until the recorded
// state equals the list. The second condition ends the wait while nothing changes (the
// API server sends bookmarks only about once a minute); it cannot see an object that
// was created and deleted after the last recorded event and before the list, whose
// events may still be in flight.
func (r *Recorder) WaitForSync(ctx context.Context) error {
	for _, res := range r.resources {
		items, listRV, err := res.list(ctx, metav1.ListOptions{LabelSelector: res.selector.String()})
		if err != nil {
			return fmt.Errorf("listing %ss: %w", res.kind, err)
		}
		target, err := parseResourceVersion(listRV)
		if err != nil {
			return err
		}
		want := map[string]string{}
		for _, item := range items {
			m, err := meta.Accessor(item)
			if err != nil {
				return err
			}
			want[m.GetName()] = m.GetResourceVersion()
		}
		ticker := time.NewTicker(r.opts.pollInterval)
		for !r.caughtUp(res.kind, target, want) {
			select {
			case <-ctx.Done():
				ticker.Stop()
				return fmt.Errorf("waiting for the %s watch to reach resourceVersion %d: %w", res.kind, target, ctx.Err())
			case <-r.stopped:
				ticker.Stop()
				return fmt.Errorf("the recorder stopped before its %s watch reached resourceVersion %d", res.kind, target)
			case <-ticker.C:
			}
		}
		ticker.Stop()
	}
	return nil
}

func (r *Recorder) caughtUp(kind Kind, target uint64, want map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.progress[kind] >= target {
		return true
	}
	have := r.state[kind]
	if len(have) != len(want) {
		return false
	}
	for name, obj := range have {
		m, err := meta.Accessor(obj)
		if err != nil || want[name] != m.GetResourceVersion() {
			return false
		}
	}
	return true
}

// initialList records the first state of a kind and returns the resource version to
// watch from.
func (r *Recorder) initialList(ctx context.Context, res *resource) (uint64, error) {
	items, listRV, err := res.list(ctx, metav1.ListOptions{LabelSelector: res.selector.String()})
	if err != nil {
		return 0, fmt.Errorf("listing %ss in namespace %q: %w", res.kind, r.namespace, err)
	}
	rv, err := parseResourceVersion(listRV)
	if err != nil {
		return 0, fmt.Errorf("listing %ss: %w", res.kind, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, item := range items {
		ev, err := newEvent(Added, item)
		if err != nil {
			return 0, err
		}
		ev.Synthetic = true
		r.appendLocked(res.kind, ev)
	}
	r.progress[res.kind] = rv
	return rv, nil
}

// run watches one kind from resource version rv until ctx is done. A watch that ends
// is resumed from the last resource version seen; one that expired is replaced by a
// re-list, which records a Gap.
func (r *Recorder) run(ctx context.Context, res *resource, rv uint64) {
	defer r.wg.Done()
	log := r.opts.log.WithValues("kind", res.kind, "namespace", r.namespace)
	backoff := r.opts.minBackoff
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, r.opts.maxBackoff)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	relistReason := ""
	for ctx.Err() == nil {
		if relistReason != "" {
			newRV, err := r.relist(ctx, res, rv, relistReason)
			if err != nil {
				if ctx.Err() == nil {
					log.Info("Re-list failed, retrying", "err", err)
				}
				if !wait() {
					return
				}
				continue
			}
			log.Info("Watch expired, re-listed; the log has a gap", "from", rv, "to", newRV, "reason", relistReason)
			rv, relistReason, backoff = newRV, "", r.opts.minBackoff
			continue
		}

		w, err := res.watch(ctx, metav1.ListOptions{
			LabelSelector:       res.selector.String(),
			ResourceVersion:     strconv.FormatUint(rv, 10),
			AllowWatchBookmarks: true,
		})
		if err != nil {
			if isExpired(err) {
				relistReason = err.Error()
				continue
			}
			if ctx.Err() == nil {
				log.Info("Watch failed, retrying", "resourceVersion", rv, "err", err)
			}
			if !wait() {
				return
			}
			continue
		}
		started := time.Now()
		newRV, received, err := r.consume(ctx, res, w, rv)
		rv = newRV
		switch {
		case ctx.Err() != nil:
			return
		case isExpired(err):
			relistReason = err.Error()
		case err != nil:
			log.Info("Watch ended with an error, resuming", "resourceVersion", rv, "err", err)
			if !wait() {
				return
			}
		case received || time.Since(started) > time.Second:
			// A watch that worked, even idly until its timeout: resume at once.
			backoff = r.opts.minBackoff
		default:
			// Closed at once without a single event: do not hammer the API server.
			if !wait() {
				return
			}
		}
	}
}

// consume records the events of one watch until it closes, fails, or ctx is done, and
// returns the resource version reached and whether any event arrived.
func (r *Recorder) consume(ctx context.Context, res *resource, w watch.Interface, rv uint64) (uint64, bool, error) {
	defer w.Stop()
	received := false
	for {
		select {
		case <-ctx.Done():
			return rv, received, ctx.Err()
		case e, ok := <-w.ResultChan():
			if !ok {
				return rv, received, nil
			}
			received = true
			switch e.Type {
			case watch.Error:
				return rv, received, apierrors.FromObject(e.Object)
			case watch.Bookmark:
				m, err := meta.Accessor(e.Object)
				if err != nil {
					return rv, received, fmt.Errorf("bookmark: %w", err)
				}
				n, err := parseResourceVersion(m.GetResourceVersion())
				if err != nil {
					return rv, received, fmt.Errorf("bookmark: %w", err)
				}
				rv = max(rv, n)
				r.mu.Lock()
				r.progress[res.kind] = max(r.progress[res.kind], rv)
				r.mu.Unlock()
			case watch.Added, watch.Modified, watch.Deleted:
				ev, err := newEvent(EventType(e.Type), e.Object)
				if err != nil {
					// An unreadable event is a hole in the log: record it so that
					// the checkers fail, and carry on.
					r.mu.Lock()
					r.appendLocked(res.kind, Event{Type: Gap, ResourceVersion: rv, Message: fmt.Sprintf("%s watch: unreadable %s event: %v", res.kind, e.Type, err)})
					r.mu.Unlock()
					continue
				}
				if ev.Type == Deleted && !res.selector.Matches(labels.Set(objectLabels(e.Object))) {
					// The API server reports an object that stops matching the
					// selector as deleted; it was only modified.
					ev.Type = Modified
					ev.LeftFilter = true
				}
				ev.Synthetic = ev.ResourceVersion <= r.baseline
				r.mu.Lock()
				r.appendLocked(res.kind, ev)
				r.progress[res.kind] = max(r.progress[res.kind], ev.ResourceVersion)
				r.mu.Unlock()
				rv = max(rv, ev.ResourceVersion)
			}
		}
	}
}

// relist records a Gap and the state a fresh list shows, and returns the list's
// resource version. Objects that changed in the gap get a synthetic Added or Modified
// event at their own resource version; objects that vanished get a synthetic Deleted at
// the list's resource version (when they went is unknown).
func (r *Recorder) relist(ctx context.Context, res *resource, from uint64, reason string) (uint64, error) {
	items, listRV, err := res.list(ctx, metav1.ListOptions{LabelSelector: res.selector.String()})
	if err != nil {
		return 0, err
	}
	to, err := parseResourceVersion(listRV)
	if err != nil {
		return 0, err
	}
	listed := make([]Event, 0, len(items))
	for _, item := range items {
		ev, err := newEvent(Added, item)
		if err != nil {
			return 0, err
		}
		ev.Synthetic = true
		listed = append(listed, ev)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked("", Event{
		Type:            Gap,
		ResourceVersion: from,
		Message: fmt.Sprintf("the %s watch of namespace %q lost its place after resourceVersion %d (%s); re-listed at resourceVersion %d, so the %s changes in between are unknown",
			res.kind, r.namespace, from, reason, to, res.kind),
	})
	state := r.state[res.kind]
	seen := map[string]bool{}
	for _, ev := range listed {
		name := ev.Name()
		seen[name] = true
		prev, ok := state[name]
		if ok {
			m, err := meta.Accessor(prev)
			if err == nil && m.GetResourceVersion() == strconv.FormatUint(ev.ResourceVersion, 10) {
				continue
			}
			ev.Type = Modified
		}
		r.appendLocked(res.kind, ev)
	}
	for _, name := range slices.Sorted(maps.Keys(state)) {
		if seen[name] {
			continue
		}
		ev, err := newEvent(Deleted, state[name])
		if err != nil {
			return 0, err
		}
		ev.ResourceVersion = to
		ev.Synthetic = true
		r.appendLocked(res.kind, ev)
	}
	r.progress[res.kind] = max(r.progress[res.kind], to)
	return to, nil
}

// appendLocked numbers ev, appends it to the log and updates the state of kind. The
// caller holds r.mu.
func (r *Recorder) appendLocked(kind Kind, ev Event) {
	r.seq++
	ev.Seq = r.seq
	r.events = append(r.events, ev)
	if ev.Type == Gap {
		return
	}
	var obj runtime.Object = ev.Pod
	if ev.EndpointSlice != nil {
		obj = ev.EndpointSlice
	}
	if ev.Type == Deleted || ev.LeftFilter {
		delete(r.state[kind], ev.Name())
	} else {
		r.state[kind][ev.Name()] = obj
	}
}

// listOf adapts a typed List call to the recorder's: the items, as pointers
// into the list, and the list's resourceVersion.
func listOf[L interface {
	runtime.Object
	GetResourceVersion() string
}](list func(context.Context, metav1.ListOptions) (L, error)) func(context.Context, metav1.ListOptions) ([]runtime.Object, string, error) {
	return func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
		l, err := list(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, "", err
		}
		return items, l.GetResourceVersion(), nil
	}
}

func objectLabels(obj runtime.Object) map[string]string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m.GetLabels()
}

// isExpired reports whether a watch cannot resume from its resource version and must
// re-list (410 Gone / Expired).
func isExpired(err error) bool {
	return apierrors.IsGone(err) || apierrors.IsResourceExpired(err)
}
