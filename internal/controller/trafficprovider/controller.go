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

	"github.com/cafe-io/cafe/internal/conflict"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/traffic"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;update

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

// Reconciler keeps one provider's finalizer on the pods its traffic
// system may route to (see the package documentation). Its single
// responsibility is that finalizer: it never writes anything else.
type Reconciler struct {
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

	finalizer string

	// mu guards waiting: the pods to be released that their traffic
	// system still routes to, in memory only for logs, the stuck event
	// and metrics (a restart forgets them and decides the same from the
	// pods).
	mu      sync.Mutex
	waiting map[types.NamespacedName]*waitingPod
}

// waitingPod is what the Reconciler remembers of a pod it waits to release.
type waitingPod struct {
	since time.Time
	// last is the last answer's kind (resultRouted or resultError),
	// logged when it changes.
	last   string
	warned bool
}

var _ reconcile.Reconciler = &Reconciler{}

// SetupWithManager registers the controller, named traffic-<provider>, for
// the gated pods and for what the provider's Serves reads.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.Provider == nil || r.Recorder == nil {
		return errors.New("trafficprovider: Client, Provider and Recorder are required")
	}
	if r.Provider.Name() == "" {
		return errors.New("trafficprovider: the provider has no name")
	}
	if r.Poll == 0 {
		r.Poll = DefaultPoll
	}
	if r.StuckAfter == 0 {
		r.StuckAfter = DefaultStuckAfter
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	r.finalizer = traffic.Finalizer(r.Provider)
	r.waiting = map[types.NamespacedName]*waitingPod{}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("traffic-"+r.Provider.Name()).
		// Gated pods only, and only the changes the decision reads: the
		// kubelet's status reports, which are most pod updates, change
		// none of them.
		For(&corev1.Pod{}, builder.WithPredicates(r.podPredicate())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles})
	if w, ok := r.Provider.(traffic.Watcher); ok {
		// What the provider's Serves reads (routes, services, gateways):
		// a route added or removed changes which pods must hold the
		// finalizer without any change to the pods.
		for _, watch := range w.Watches() {
			b = b.Watches(watch.Object, watch.Handler)
		}
	}
	return b.Complete(r)
}

// podPredicate passes the events of gated pods that may change the
// decision: creation (and the initial list after a restart), deletion, and
// updates of labels (Serves reads them), the gate, the deletion timestamp
// or the finalizer.
func (r *Reconciler) podPredicate() predicate.Predicate {
	gated := func(obj client.Object) bool {
		pod, ok := obj.(*corev1.Pod)
		return ok && lossless.HasGate(&pod.Spec)
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return gated(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return gated(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return gated(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(*corev1.Pod)
			pod, okNew := e.ObjectNew.(*corev1.Pod)
			return okOld && okNew && lossless.HasGate(&pod.Spec) && decisionInputsChanged(old, pod, r.finalizer)
		},
	}
}

// decisionInputsChanged reports whether an update changed what the
// decision reads of a pod.
func decisionInputsChanged(old, pod *corev1.Pod, finalizer string) bool {
	return !maps.Equal(old.Labels, pod.Labels) ||
		lossless.GateOpen(old) != lossless.GateOpen(pod) ||
		old.DeletionTimestamp.IsZero() != pod.DeletionTimestamp.IsZero() ||
		controllerutil.ContainsFinalizer(old, finalizer) != controllerutil.ContainsFinalizer(pod, finalizer)
}

// Reconcile adds the provider's finalizer to a pod the traffic system may
// route to, and removes it once the traffic system no longer does.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.stopWaiting(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !lossless.HasGate(&pod.Spec) {
		// Outside the lossless protocol: nothing waits for a finalizer.
		return ctrl.Result{}, nil
	}
	held := controllerutil.ContainsFinalizer(pod, r.finalizer)
	wanted, err := r.wanted(ctx, pod)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case wanted && !held:
		if err := r.patchFinalizer(ctx, pod, controllerutil.AddFinalizer); err != nil {
			return conflict.Requeue(ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("adding finalizer %s: %w", r.finalizer, err)))
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Added traffic finalizer", "Pod", klog.KObj(pod), "finalizer", r.finalizer)
		return ctrl.Result{}, nil
	case wanted || !held:
		// Nothing to do; a release waited for may have been called off
		// (the gate reopened).
		r.stopWaiting(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	return r.release(ctx, pod)
}

// wanted: the pod must hold the finalizer while its gate is open, it is
// not being deleted, and the traffic system may route to it.
func (r *Reconciler) wanted(ctx context.Context, pod *corev1.Pod) (bool, error) {
	if !pod.DeletionTimestamp.IsZero() || !lossless.GateOpen(pod) {
		return false, nil
	}
	serves, err := r.Provider.Serves(ctx, pod)
	if err != nil {
		return false, fmt.Errorf("asking provider %s whether it may route to pod %s: %w", r.Provider.Name(), client.ObjectKeyFromObject(pod), err)
	}
	return serves, nil
}

// release removes the finalizer of a pod to be released once the traffic
// system says it no longer routes to it; until then it asks again every
// Poll.
func (r *Reconciler) release(ctx context.Context, pod *corev1.Pod) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx).WithValues("Pod", klog.KObj(pod), "finalizer", r.finalizer)
	key := client.ObjectKeyFromObject(pod)
	routed, where, err := r.Provider.Routes(ctx, pod)
	name := r.Provider.Name()
	if err != nil || routed {
		result, why := resultRouted, where
		if err != nil {
			result, why = resultError, fmt.Sprintf("no answer from the traffic system: %v", err)
		}
		confirmationsTotal.WithLabelValues(name, result).Inc()
		w, first, changed, stuck := r.wait(key, result)
		switch {
		case first:
			log.Info("Keeping traffic finalizer until the traffic system no longer routes to the pod", "why", releaseReason(pod), "answer", why)
		case changed:
			log.Info("Still keeping traffic finalizer", "answer", why, "waited", r.Now().Sub(w.since).Round(time.Millisecond))
		default:
			log.V(1).Info("Still keeping traffic finalizer", "answer", why)
		}
		if stuck {
			r.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, "TrafficNotReleased", "Release",
				"Traffic provider %s has waited %s for the pod to be released (%s): %s", name, r.StuckAfter, releaseReason(pod), why)
		}
		return ctrl.Result{RequeueAfter: r.Poll}, nil
	}
	if err := r.patchFinalizer(ctx, pod, controllerutil.RemoveFinalizer); err != nil {
		if apierrors.IsNotFound(err) {
			r.stopWaiting(key)
			return ctrl.Result{}, nil
		}
		return conflict.Requeue(ctrl.Result{}, fmt.Errorf("removing finalizer %s: %w", r.finalizer, err))
	}
	confirmationsTotal.WithLabelValues(name, resultReleased).Inc()
	if w := r.stopWaiting(key); w != nil {
		releaseSeconds.WithLabelValues(name).Observe(r.Now().Sub(w.since).Seconds())
	}
	log.Info("Removed traffic finalizer: the traffic system no longer routes to the pod", "why", releaseReason(pod), "answer", where)
	return ctrl.Result{}, nil
}

// releaseReason says why a pod that holds the finalizer is to be
// released.
func releaseReason(pod *corev1.Pod) string {
	switch {
	case !pod.DeletionTimestamp.IsZero():
		return "the pod is being deleted"
	case !lossless.GateOpen(pod):
		return "its traffic-ready gate is closed"
	default:
		return "the traffic system's configuration no longer routes to it"
	}
}

// patchFinalizer writes the finalizer edit alone, with the pod's
// resourceVersion as an optimistic lock: the decision was made from this
// version of the pod.
func (r *Reconciler) patchFinalizer(ctx context.Context, pod *corev1.Pod, edit func(client.Object, string) bool) error {
	patched := pod.DeepCopy()
	edit(patched, r.finalizer)
	return r.Client.Patch(ctx, patched, client.MergeFromWithOptions(pod, client.MergeFromWithOptimisticLock{}))
}

// wait records an answer that keeps the pod waiting: first is its first,
// changed says the answer's kind changed, stuck that the wait has just
// passed StuckAfter (true once per wait).
func (r *Reconciler) wait(key types.NamespacedName, result string) (w waitingPod, first, changed, stuck bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	p, ok := r.waiting[key]
	if !ok {
		p = &waitingPod{since: now}
		r.waiting[key] = p
		podsWaiting.WithLabelValues(r.Provider.Name()).Set(float64(len(r.waiting)))
	}
	changed = ok && p.last != result
	p.last = result
	if !p.warned && now.Sub(p.since) >= r.StuckAfter {
		p.warned, stuck = true, true
	}
	return *p, !ok, changed, stuck
}

// stopWaiting forgets a pod and returns what was remembered (nil if
// nothing).
func (r *Reconciler) stopWaiting(key types.NamespacedName) *waitingPod {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.waiting[key]
	if !ok {
		return nil
	}
	delete(r.waiting, key)
	podsWaiting.WithLabelValues(r.Provider.Name()).Set(float64(len(r.waiting)))
	return p
}
