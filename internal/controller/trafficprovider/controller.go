package trafficprovider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/conflict"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/traffic"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances,verbs=get;list;watch;patch;update

// Defaults of the Reconciler's tunables.
const (
	// DefaultPoll: a pod still routed is asked about again this soon. It
	// is a wait on the traffic system's state, which cannot be watched;
	// the provider shares one read of the system between the pods asking.
	DefaultPoll = 250 * time.Millisecond
	// DefaultStuckAfter: a release that has waited this long gets one
	// Warning event on the pod (events are API writes: one per stuck pod,
	// never one per pod per release).
	DefaultStuckAfter = 2 * time.Minute
	// DefaultMaxConcurrentReconciles: a reconcile mostly waits for the
	// traffic system's answer, which the provider shares between the pods
	// asking at once, so more workers answer more pods per read.
	DefaultMaxConcurrentReconciles = 16
)

// Options configure a Reconciler or an InstanceReconciler.
type Options struct {
	Client   client.Client
	Provider traffic.Provider
	Recorder events.EventRecorder
	// Poll, StuckAfter and MaxConcurrentReconciles default to the
	// Default* constants.
	Poll                    time.Duration
	StuckAfter              time.Duration
	MaxConcurrentReconciles int
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// complete checks the options and fills in the defaults.
func (o Options) complete() (Options, error) {
	if o.Client == nil || o.Provider == nil || o.Recorder == nil {
		return o, errors.New("trafficprovider: Client, Provider and Recorder are required")
	}
	if o.Provider.Name() == "" {
		return o, errors.New("trafficprovider: the provider has no name")
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.StuckAfter == 0 {
		o.StuckAfter = DefaultStuckAfter
	}
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Reconciler keeps one provider's finalizer on the pods its traffic
// system may route to (see the package documentation). Its single
// responsibility is that finalizer: it never writes anything else.
type Reconciler struct {
	Options

	guard *guard[*corev1.Pod]
}

var _ reconcile.Reconciler = &Reconciler{}

// SetupWithManager registers the controller, named traffic-<provider>, for
// the gated pods and for what the provider's Serves reads.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	opts, err := r.complete()
	if err != nil {
		return err
	}
	r.Options = opts
	var watches []traffic.Watch
	if w, ok := r.Provider.(traffic.Watcher); ok {
		watches = w.Watches()
	}
	r.guard, err = setup(mgr, "traffic-"+r.Provider.Name(), opts, podKind, r.Provider.Serves, r.Provider.Routes, watches)
	return err
}

// Reconcile adds the provider's finalizer to a pod the traffic system may
// route to, and removes it once the traffic system no longer does.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.guard.Reconcile(ctx, req)
}

// InstanceReconciler keeps one provider's finalizer on the ClassicInstances
// its traffic system may route to, by the same decision as Reconciler's
// for pods. Its Provider must implement traffic.InstanceProvider.
type InstanceReconciler struct {
	Options

	guard *guard[*cafev1alpha1.ClassicInstance]
}

var _ reconcile.Reconciler = &InstanceReconciler{}

// SetupWithManager registers the controller, named
// traffic-<provider>-instances, for the ClassicInstances and for what the
// provider's ServesInstance reads.
func (r *InstanceReconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	opts, err := r.complete()
	if err != nil {
		return err
	}
	r.Options = opts
	p, ok := r.Provider.(traffic.InstanceProvider)
	if !ok {
		return fmt.Errorf("trafficprovider: provider %s does not route to classic instances (no traffic.InstanceProvider)", r.Provider.Name())
	}
	var watches []traffic.Watch
	if w, ok := r.Provider.(traffic.InstanceWatcher); ok {
		watches = w.InstanceWatches()
	}
	r.guard, err = setup(mgr, "traffic-"+r.Provider.Name()+"-instances", opts, instanceKind, p.ServesInstance, p.RoutesInstance, watches)
	return err
}

// Reconcile adds the provider's finalizer to an instance the traffic
// system may route to, and removes it once the traffic system no longer
// does.
func (r *InstanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.guard.Reconcile(ctx, req)
}

// guard is the decision of the package documentation for one kind of
// object (pods, or classic instances) and one provider: the one
// implementation both reconcilers run.
type guard[T client.Object] struct {
	Options
	kind kind[T]
	// serves and routes are the provider's questions for the kind.
	serves func(context.Context, T) (bool, error)
	routes func(context.Context, T) (bool, string, error)

	finalizer string

	// mu guards waiting: the objects to be released that their traffic
	// system still routes to, in memory only for logs, the stuck event
	// and metrics (a restart forgets them and decides the same from the
	// objects).
	mu      sync.Mutex
	waiting map[types.NamespacedName]*waitingObject
}

// waitingObject is what a guard remembers of an object it waits to
// release.
type waitingObject struct {
	since time.Time
	// last is the last answer's kind (resultRouted or resultError),
	// logged when it changes.
	last   string
	warned bool
}

// setup registers the controller of the kind, named name: the guarded
// objects, filtered to the changes the decision reads, and the provider's
// watches of what its serves reads (a route added or removed changes which
// objects must hold the finalizer without any change to them).
func setup[T client.Object](mgr ctrl.Manager, name string, opts Options, k kind[T],
	serves func(context.Context, T) (bool, error), routes func(context.Context, T) (bool, string, error),
	watches []traffic.Watch) (*guard[T], error) {
	g := &guard[T]{
		Options: opts, kind: k, serves: serves, routes: routes,
		finalizer: traffic.Finalizer(opts.Provider),
		waiting:   map[types.NamespacedName]*waitingObject{},
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(k.newObject(), builder.WithPredicates(g.predicate())).
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}))
	for _, w := range watches {
		b = b.Watches(w.Object, w.Handler)
	}
	return g, b.Complete(g)
}

// predicate passes the events of guarded objects that may change the
// decision: creation (and the initial list after a restart), deletion, and
// updates of what the decision reads (kind.inputsChanged). For pods that
// leaves out the kubelet's status reports, which are most pod updates; for
// instances the agent's.
func (g *guard[T]) predicate() predicate.Predicate {
	guarded := func(o client.Object) bool {
		obj, ok := o.(T)
		return ok && g.kind.guarded(obj)
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return guarded(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return guarded(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return guarded(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(T)
			obj, okNew := e.ObjectNew.(T)
			return okOld && okNew && g.kind.guarded(obj) && g.kind.inputsChanged(old, obj, g.finalizer)
		},
	}
}

// Reconcile runs the decision of the package documentation for one object.
func (g *guard[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := g.kind.newObject()
	if err := g.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			g.stopWaiting(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !g.kind.guarded(obj) {
		// Outside the lossless protocol: nothing waits for a finalizer.
		return ctrl.Result{}, nil
	}
	held := controllerutil.ContainsFinalizer(obj, g.finalizer)
	wanted, err := g.wanted(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case wanted && !held:
		if err := g.patchFinalizer(ctx, obj, controllerutil.AddFinalizer); err != nil {
			return conflict.Requeue(ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("adding finalizer %s: %w", g.finalizer, err)))
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Added traffic finalizer", g.kind.kind, klog.KObj(obj), "finalizer", g.finalizer)
		return ctrl.Result{}, nil
	case wanted || !held:
		// Nothing to do; a release waited for may have been called off
		// (the gate reopened).
		g.stopWaiting(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	return g.release(ctx, obj)
}

// wanted: the object must hold the finalizer while its gate is open, it
// is not being deleted, and the traffic system may route to it.
func (g *guard[T]) wanted(ctx context.Context, obj T) (bool, error) {
	if !obj.GetDeletionTimestamp().IsZero() || !g.kind.gateOpen(obj) {
		return false, nil
	}
	serves, err := g.serves(ctx, obj)
	if err != nil {
		return false, fmt.Errorf("asking provider %s whether it may route to %s %s: %w", g.Provider.Name(), g.kind.noun, client.ObjectKeyFromObject(obj), err)
	}
	return serves, nil
}

// release removes the finalizer of an object to be released once the
// traffic system says it no longer routes to it; until then it asks again
// every Poll.
func (g *guard[T]) release(ctx context.Context, obj T) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx).WithValues(g.kind.kind, klog.KObj(obj), "finalizer", g.finalizer)
	key := client.ObjectKeyFromObject(obj)
	routed, where, err := g.routes(ctx, obj)
	name := g.Provider.Name()
	m := g.kind.metrics
	if err != nil || routed {
		result, why := resultRouted, where
		if err != nil {
			result, why = resultError, fmt.Sprintf("no answer from the traffic system: %v", err)
		}
		m.confirmations.WithLabelValues(name, result).Inc()
		w, first, changed, stuck := g.wait(key, result)
		switch {
		case first:
			log.Info("Keeping traffic finalizer until the traffic system no longer routes to the "+g.kind.noun, "why", g.releaseReason(obj), "answer", why)
		case changed:
			log.Info("Still keeping traffic finalizer", "answer", why, "waited", g.Now().Sub(w.since).Round(time.Millisecond))
		default:
			log.V(1).Info("Still keeping traffic finalizer", "answer", why)
		}
		if stuck {
			g.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "TrafficNotReleased", "Release",
				"Traffic provider %s has waited %s for the %s to be released (%s): %s", name, g.StuckAfter, g.kind.noun, g.releaseReason(obj), why)
		}
		return ctrl.Result{RequeueAfter: g.Poll}, nil
	}
	if err := g.patchFinalizer(ctx, obj, controllerutil.RemoveFinalizer); err != nil {
		if apierrors.IsNotFound(err) {
			g.stopWaiting(key)
			return ctrl.Result{}, nil
		}
		return conflict.Requeue(ctrl.Result{}, fmt.Errorf("removing finalizer %s: %w", g.finalizer, err))
	}
	m.confirmations.WithLabelValues(name, resultReleased).Inc()
	if w := g.stopWaiting(key); w != nil {
		m.release.WithLabelValues(name).Observe(g.Now().Sub(w.since).Seconds())
	}
	log.Info("Removed traffic finalizer: the traffic system no longer routes to the "+g.kind.noun, "why", g.releaseReason(obj), "answer", where)
	return ctrl.Result{}, nil
}

// releaseReason says why an object that holds the finalizer is to be
// released.
func (g *guard[T]) releaseReason(obj T) string {
	switch {
	case !obj.GetDeletionTimestamp().IsZero():
		return "the " + g.kind.noun + " is being deleted"
	case !g.kind.gateOpen(obj):
		return g.kind.gateClosed(obj)
	default:
		return "the traffic system's configuration no longer routes to it"
	}
}

// patchFinalizer writes the finalizer edit alone, with the object's
// resourceVersion as an optimistic lock: the decision was made from this
// version of the object.
func (g *guard[T]) patchFinalizer(ctx context.Context, obj T, edit func(client.Object, string) bool) error {
	patched := obj.DeepCopyObject().(T)
	edit(patched, g.finalizer)
	return g.Client.Patch(ctx, patched, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{}))
}

// wait records an answer that keeps the object waiting: first is its
// first, changed says the answer's kind changed, stuck that the wait has
// just passed StuckAfter (true once per wait).
func (g *guard[T]) wait(key types.NamespacedName, result string) (w waitingObject, first, changed, stuck bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.Now()
	p, ok := g.waiting[key]
	if !ok {
		p = &waitingObject{since: now}
		g.waiting[key] = p
		g.kind.metrics.waiting.WithLabelValues(g.Provider.Name()).Set(float64(len(g.waiting)))
	}
	changed = ok && p.last != result
	p.last = result
	if !p.warned && now.Sub(p.since) >= g.StuckAfter {
		p.warned, stuck = true, true
	}
	return *p, !ok, changed, stuck
}

// stopWaiting forgets an object and returns what was remembered (nil if
// nothing).
func (g *guard[T]) stopWaiting(key types.NamespacedName) *waitingObject {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.waiting[key]
	if !ok {
		return nil
	}
	delete(g.waiting, key)
	g.kind.metrics.waiting.WithLabelValues(g.Provider.Name()).Set(float64(len(g.waiting)))
	return p
}

// kind is what the decision reads of one kind of guarded object, and the
// metrics it counts in.
type kind[T client.Object] struct {
	// kind names the object in logs ("Pod"); noun in messages ("pod").
	kind, noun string
	metrics    kindMetrics
	newObject  func() T
	// guarded: the object is in the lossless protocol (something waits
	// for its finalizers).
	guarded func(T) bool
	// gateOpen reads the object's traffic gate; gateClosed says, for logs
	// and events, that it is closed.
	gateOpen   func(T) bool
	gateClosed func(T) string
	// moreInputsChanged, when set, reports changes of what else the
	// provider's questions read of the object.
	moreInputsChanged func(old, obj T) bool
}

// inputsChanged reports whether an update changed what the decision reads
// of an object: its labels (Serves reads them), its gate, its deletion,
// the provider's finalizer, and what the kind adds.
func (k kind[T]) inputsChanged(old, obj T, finalizer string) bool {
	return !maps.Equal(old.GetLabels(), obj.GetLabels()) ||
		k.gateOpen(old) != k.gateOpen(obj) ||
		old.GetDeletionTimestamp().IsZero() != obj.GetDeletionTimestamp().IsZero() ||
		controllerutil.ContainsFinalizer(old, finalizer) != controllerutil.ContainsFinalizer(obj, finalizer) ||
		(k.moreInputsChanged != nil && k.moreInputsChanged(old, obj))
}
