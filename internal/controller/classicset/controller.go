package classicset

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/revision"
	"github.com/cafe-io/cafe/internal/statuspatch"
)

// +kubebuilder:rbac:groups=cafe.io,resources=classicsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cafe.io,resources=classicsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cafe.io,resources=classichosts,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// placementRetry is how soon a set short of hosts looks again.
const placementRetry = 30 * time.Second

// deletedOnly passes deletions alone.
var deletedOnly = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
}

// trafficFinalizerPrefix marks the finalizers of traffic providers: an
// instance that carries one may still receive traffic.
const trafficFinalizerPrefix = "traffic.cafe.io/"

// Reconciler runs ClassicSets.
type Reconciler struct {
	Client client.Client
	// APIReader reads the EndpointSlices of a drain from the API server:
	// a cache behind the classic endpoints controller's last write would
	// call an instance drained that a slice still lists.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// placeMu serialises placements, from reading the hosts' load to the
	// creates: two sets placing at once could otherwise both take a host's
	// last slot or the same port.
	placeMu sync.Mutex
}

// SetupWithManager registers the controller. The manager must index
// instances by cafev1alpha1.ClassicInstanceHostField and cache CAFE's
// EndpointSlices (those of cafev1alpha1.EndpointSliceManagedBy).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil || r.APIReader == nil || r.Scheme == nil || r.Recorder == nil {
		return errors.New("classicset: Client, APIReader, Scheme and Recorder are required")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("classicset").
		For(&cafev1alpha1.ClassicSet{}).
		Owns(&cafev1alpha1.ClassicInstance{}).
		Watches(&cafev1alpha1.ClassicHost{}, handler.EnqueueRequestsFromMapFunc(r.setsOfHost)).
		// An instance of any set leaving a host frees room (capacity, its
		// port) that a set short of hosts waits for.
		Watches(&cafev1alpha1.ClassicInstance{}, handler.EnqueueRequestsFromMapFunc(r.setsWaitingForRoomOn), builder.WithPredicates(deletedOnly)).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.setsOfSlice)).
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: 4})).
		Complete(r)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile reads the set's instances and the hosts, plans, writes the
// plan and reports.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	set := &cafev1alpha1.ClassicSet{}
	if err := r.Client.Get(ctx, req.NamespacedName, set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !set.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, set)
	}
	if added, err := r.ensureFinalizer(ctx, set); added || err != nil {
		return ctrl.Result{}, err // the write wakes the controller again
	}
	before := set.DeepCopy()
	if msg := invalidSpec(set); msg != "" {
		setCondition(set, cafev1alpha1.ClassicSetPlacedCondition, metav1.ConditionFalse, "InvalidSpec", msg)
		_, err := statuspatch.IfChanged(ctx, r.Client, before, set, statusOf)
		return ctrl.Result{}, err
	}
	rev := revision.ObjectHash(set.Spec.Template)
	instances, err := r.instancesOf(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	hosts := &cafev1alpha1.ClassicHostList{}
	if err := r.Client.List(ctx, hosts); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing classic hosts: %w", err)
	}
	in, err := r.observe(ctx, set, rev, instances, hosts.Items)
	if err != nil {
		return ctrl.Result{}, err
	}
	p := plan(in)
	placed := placement{}
	if p.Create > 0 {
		r.placeMu.Lock()
		defer r.placeMu.Unlock() // through the creates
		if placed, err = r.place(ctx, set, hosts.Items, instances, p.Create); err != nil {
			return ctrl.Result{}, err
		}
		if placed.cacheBehind {
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
	}
	execErr := r.execute(ctx, set, rev, p, placed)
	report(set, rev, in, p, placed, execErr == nil)
	if _, err := statuspatch.IfChanged(ctx, r.Client, before, set, statusOf); err != nil {
		return ctrl.Result{}, errors.Join(execErr, err)
	}
	requeue := p.RequeueAfter
	if placed.Missing != "" && (requeue == 0 || requeue > placementRetry) {
		// Room on a host is watched for (a host's change, an instance
		// leaving); the retry covers what no event announces.
		requeue = placementRetry
	}
	return ctrl.Result{RequeueAfter: requeue}, execErr
}

func statusOf(s *cafev1alpha1.ClassicSet) any { return s.Status }

// invalidSpec reports a spec the controller cannot act on (admitted
// without the CRD's schema, or a selector that misses the template).
func invalidSpec(set *cafev1alpha1.ClassicSet) string {
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	switch {
	case set.Spec.Selector == nil || err != nil || sel.Empty():
		return fmt.Sprintf("spec.selector: must be a non-empty valid label selector (%v)", err)
	case !sel.Matches(labels.Set(set.Spec.Template.Metadata.Labels)):
		return "spec.selector: does not match spec.template.metadata.labels; the set would not find its own instances"
	}
	return ""
}

// instancesOf lists the instances the set controls.
func (r *Reconciler) instancesOf(ctx context.Context, set *cafev1alpha1.ClassicSet) ([]cafev1alpha1.ClassicInstance, error) {
	list := &cafev1alpha1.ClassicInstanceList{}
	if err := r.Client.List(ctx, list, client.InNamespace(set.Namespace), client.MatchingLabels{cafev1alpha1.ClassicSetLabel: set.Name}); err != nil {
		return nil, fmt.Errorf("listing the instances of %s: %w", set.Name, err)
	}
	out := list.Items[:0]
	for _, i := range list.Items {
		if metav1.IsControlledBy(&i, set) {
			out = append(out, i)
		}
	}
	return out, nil
}

// observe turns the instances into the planner's input. Drains are judged
// from the API server's EndpointSlices, read only when an instance drains.
func (r *Reconciler) observe(ctx context.Context, set *cafev1alpha1.ClassicSet, rev string, instances []cafev1alpha1.ClassicInstance, hosts []cafev1alpha1.ClassicHost) (planInput, error) {
	ready, healthy := map[string]bool{}, map[string]bool{}
	for _, h := range hosts {
		ready[h.Name] = meta.IsStatusConditionTrue(h.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition)
		healthy[h.Name] = meta.IsStatusConditionTrue(h.Status.Conditions, cafev1alpha1.ClassicHostHealthyCondition)
	}
	var routed map[string]string
	in := planInput{
		Replicas:        int(ptr.Deref(set.Spec.Replicas, 1)),
		Partition:       int(ptr.Deref(set.Spec.UpdateStrategy.Partition, 0)),
		MinReadySeconds: time.Duration(set.Spec.UpdateStrategy.MinReadySeconds) * time.Second,
		Paused:          set.Spec.UpdateStrategy.Paused,
		Now:             r.now(),
	}
	maxUnavailable := ptr.Deref(set.Spec.UpdateStrategy.MaxUnavailable, intstr.FromInt32(1))
	mu, err := intstr.GetScaledValueFromIntOrPercent(&maxUnavailable, in.Replicas, false)
	if err != nil {
		return in, fmt.Errorf("spec.updateStrategy.maxUnavailable: %w", err)
	}
	in.MaxUnavailable = mu
	for i := range instances {
		inst := &instances[i]
		s := instanceState{
			Instance:    inst,
			Updated:     inst.Labels[cafev1alpha1.RevisionHashLabel] == rev,
			Terminating: !inst.DeletionTimestamp.IsZero(),
			Ready:       inst.IsReady() && ready[inst.Spec.HostName] && runsSpec(inst),
			Gate:        cmpOr(inst.Spec.TrafficGate, cafev1alpha1.ClassicTrafficGateOpen),
			// A migration request counts while its host is unhealthy: a host
			// judged Healthy again keeps its instance (nothing could replace
			// it on the same host, one per set).
			Migrating:    inst.Annotations[cafev1alpha1.MigrationRequestedAnnotation] != "" && !healthy[inst.Spec.HostName],
			SameArtifact: equality.Semantic.DeepEqual(inst.Spec.Artifact, set.Spec.Template.Artifact),
		}
		if c := meta.FindStatusCondition(inst.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition); c != nil {
			s.ReadySince = c.LastTransitionTime.Time
		}
		if !s.gateOpen() && !s.Terminating {
			if routed == nil {
				if routed, err = r.routedInstances(ctx, set.Namespace); err != nil {
					return in, err
				}
			}
			s.Holders = holders(inst, routed)
			s.Drained = len(s.Holders) == 0
		}
		in.Instances = append(in.Instances, s)
	}
	return in, nil
}

// runsSpec: the process the agent reports runs the spec's package.
func runsSpec(inst *cafev1alpha1.ClassicInstance) bool {
	return inst.Status.Process != nil && inst.Status.Process.SHA256 == inst.Spec.Artifact.SHA256
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// routedInstances reads, from the API server, the CAFE EndpointSlices of
// namespace and names each instance they list as ready or serving, with
// the slice that does.
func (r *Reconciler) routedInstances(ctx context.Context, namespace string) (map[string]string, error) {
	list := &discoveryv1.EndpointSliceList{}
	if err := r.APIReader.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelManagedBy: cafev1alpha1.EndpointSliceManagedBy}); err != nil {
		return nil, fmt.Errorf("reading the classic EndpointSlices of %s: %w", namespace, err)
	}
	out := map[string]string{}
	for _, slice := range list.Items {
		for _, ep := range slice.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "ClassicInstance" {
				continue
			}
			if ptr.Deref(ep.Conditions.Ready, false) || ptr.Deref(ep.Conditions.Serving, false) {
				out[ep.TargetRef.Name] = "EndpointSlice " + slice.Name
			}
		}
	}
	return out, nil
}

// holders lists what may still send traffic to inst: a CAFE EndpointSlice
// listing it, and traffic providers' finalizers.
func holders(inst *cafev1alpha1.ClassicInstance, routed map[string]string) []string {
	var out []string
	if slice, ok := routed[inst.Name]; ok {
		out = append(out, slice)
	}
	for _, f := range inst.Finalizers {
		if strings.HasPrefix(f, trafficFinalizerPrefix) {
			out = append(out, "finalizer "+f)
		}
	}
	return out
}

// place reads what runs on the hosts of the set's placement from the API
// server (the cache may not have another set's instance created a moment
// ago) and chooses hosts for want new instances. An instance of this set
// the API server has and the cache has not yet means the plan was made
// from a stale view: nothing is placed (cacheBehind).
func (r *Reconciler) place(ctx context.Context, set *cafev1alpha1.ClassicSet, hosts []cafev1alpha1.ClassicHost, own []cafev1alpha1.ClassicInstance, want int) (placement, error) {
	known := map[types.UID]bool{}
	for _, i := range own {
		known[i.UID] = true
	}
	load := map[string]hostLoad{}
	for _, h := range hosts {
		if !inPlacement(set.Spec.Placement, &h) {
			continue
		}
		on := &cafev1alpha1.ClassicInstanceList{}
		if err := r.APIReader.List(ctx, on, client.MatchingFields{cafev1alpha1.ClassicInstanceHostField: h.Name}); err != nil {
			return placement{}, fmt.Errorf("listing the instances on host %s: %w", h.Name, err)
		}
		l := hostLoad{Ports: map[int32]bool{}}
		for _, i := range on.Items {
			l.Instances++
			l.Ports[i.Spec.Artifact.Port] = true
			if metav1.IsControlledBy(&i, set) {
				if !known[i.UID] {
					return placement{cacheBehind: true}, nil
				}
				l.OfSet = true
			}
		}
		load[h.Name] = l
	}
	for _, i := range own {
		l := load[i.Spec.HostName]
		l.OfSet = true
		load[i.Spec.HostName] = l
	}
	return place(set, hosts, load, want), nil
}

// execute writes the plan: gates, package updates, deletes, creates. It
// goes on past a failed write (each is independent) and returns them all.
func (r *Reconciler) execute(ctx context.Context, set *cafev1alpha1.ClassicSet, rev string, p planResult, placed placement) error {
	var errs []error
	for _, g := range p.Gates {
		errs = append(errs, r.setGate(ctx, g))
	}
	for _, inst := range p.Update {
		errs = append(errs, r.update(ctx, set, rev, inst))
	}
	for _, inst := range p.Delete {
		errs = append(errs, r.delete(ctx, inst))
	}
	for _, host := range placed.Hosts {
		errs = append(errs, r.create(ctx, set, rev, host))
	}
	return errors.Join(errs...)
}

// setGate writes one gate, from the instance as read (optimistic lock).
func (r *Reconciler) setGate(ctx context.Context, g gateChange) error {
	inst := g.Instance.DeepCopy()
	patch := client.MergeFromWithOptions(inst.DeepCopy(), client.MergeFromWithOptimisticLock{})
	inst.Spec.TrafficGate = g.Gate
	if err := r.Client.Patch(ctx, inst, patch); err != nil {
		return ignoreStale(fmt.Errorf("setting the traffic gate of instance %s to %s: %w", inst.Name, g.Gate, err))
	}
	log.FromContext(ctx).V(1).Info("traffic gate set", "instance", inst.Name, "gate", g.Gate)
	return nil
}

// update moves an instance to the update revision: its package and
// metadata (drained first unless its package is already the revision's);
// a closed gate stays closed until it is healthy on the new package.
func (r *Reconciler) update(ctx context.Context, set *cafev1alpha1.ClassicSet, rev string, old *cafev1alpha1.ClassicInstance) error {
	inst := old.DeepCopy()
	patch := client.MergeFromWithOptions(inst.DeepCopy(), client.MergeFromWithOptimisticLock{})
	inst.Labels = instanceLabels(set, rev)
	inst.Annotations = maps.Clone(set.Spec.Template.Metadata.Annotations)
	inst.Spec.Artifact = *set.Spec.Template.Artifact.DeepCopy()
	if err := r.Client.Patch(ctx, inst, patch); err != nil {
		return ignoreStale(fmt.Errorf("updating the package of instance %s: %w", inst.Name, err))
	}
	if equality.Semantic.DeepEqual(old.Spec.Artifact, inst.Spec.Artifact) {
		r.Recorder.Eventf(set, inst, corev1.EventTypeNormal, "Relabelled", "Update", "instance %s moved to revision %s without a drain: its package is the revision's", inst.Name, rev)
		return nil
	}
	r.Recorder.Eventf(set, inst, corev1.EventTypeNormal, "Updating", "Update", "instance %s drained; package changed to %s", inst.Name, shortSHA(inst.Spec.Artifact.SHA256))
	return nil
}

// delete removes a drained surplus instance, if it is still the one read.
func (r *Reconciler) delete(ctx context.Context, inst *cafev1alpha1.ClassicInstance) error {
	err := r.Client.Delete(ctx, inst, client.Preconditions{UID: &inst.UID, ResourceVersion: &inst.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) {
		return ignoreStale(fmt.Errorf("deleting drained instance %s: %w", inst.Name, err))
	}
	return nil
}

// create places a new instance on host; it is named after the host, so a
// repeated create finds it there.
func (r *Reconciler) create(ctx context.Context, set *cafev1alpha1.ClassicSet, rev, host string) error {
	inst := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: set.Namespace, Name: InstanceName(set.Name, host),
			Labels: instanceLabels(set, rev), Annotations: maps.Clone(set.Spec.Template.Metadata.Annotations),
		},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: *set.Spec.Template.Artifact.DeepCopy(), TrafficGate: cafev1alpha1.ClassicTrafficGateOpen},
	}
	if err := controllerutil.SetControllerReference(set, inst, r.Scheme); err != nil {
		return err
	}
	if err := r.Client.Create(ctx, inst); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("creating instance %s on host %s: %w", inst.Name, host, err)
	}
	r.Recorder.Eventf(set, inst, corev1.EventTypeNormal, "Placed", "Create", "instance %s placed on host %s", inst.Name, host)
	return nil
}

// InstanceName is the name of the set's instance on host.
func InstanceName(set, host string) string {
	h := fnv.New32a()
	h.Write([]byte(host))
	return set + "-" + utilrand.SafeEncodeString(fmt.Sprint(h.Sum32()))[:5]
}

func instanceLabels(set *cafev1alpha1.ClassicSet, rev string) map[string]string {
	out := maps.Clone(set.Spec.Template.Metadata.Labels)
	if out == nil {
		out = map[string]string{}
	}
	out[cafev1alpha1.ClassicSetLabel] = set.Name
	out[cafev1alpha1.RevisionHashLabel] = rev
	return out
}

// ignoreStale drops a conflict: the instance changed since it was read,
// and the next reconcile decides from the new state.
func ignoreStale(err error) error {
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func shortSHA(s string) string { return s[:min(len(s), 12)] }

// setsOfHost wakes the sets that may place on (or run on) a host whose
// readiness, capacity or cordon changed.
func (r *Reconciler) setsOfHost(ctx context.Context, o client.Object) []ctrl.Request {
	h, ok := o.(*cafev1alpha1.ClassicHost)
	if !ok {
		return nil
	}
	sets := &cafev1alpha1.ClassicSetList{}
	if err := r.Client.List(ctx, sets); err != nil {
		log.FromContext(ctx).Error(err, "listing classic sets for a host change", "host", h.Name)
		return nil
	}
	var out []ctrl.Request
	for _, s := range sets.Items {
		if inPlacement(s.Spec.Placement, h) {
			out = append(out, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
		}
	}
	return out
}

// setsWaitingForRoomOn wakes the sets short of hosts that may place on the
// host a deleted instance ran on.
func (r *Reconciler) setsWaitingForRoomOn(ctx context.Context, o client.Object) []ctrl.Request {
	inst, ok := o.(*cafev1alpha1.ClassicInstance)
	if !ok {
		return nil
	}
	host := &cafev1alpha1.ClassicHost{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: inst.Spec.HostName}, host); err != nil {
		return nil
	}
	var out []ctrl.Request
	for _, req := range r.setsOfHost(ctx, host) {
		set := &cafev1alpha1.ClassicSet{}
		if err := r.Client.Get(ctx, req.NamespacedName, set); err == nil && !meta.IsStatusConditionTrue(set.Status.Conditions, cafev1alpha1.ClassicSetPlacedCondition) {
			out = append(out, req)
		}
	}
	return out
}

// setsOfSlice wakes the sets of the instances a CAFE slice lists: a drain
// waits on the slice's change.
func (r *Reconciler) setsOfSlice(ctx context.Context, o client.Object) []ctrl.Request {
	slice, ok := o.(*discoveryv1.EndpointSlice)
	if !ok || slice.Labels[discoveryv1.LabelManagedBy] != cafev1alpha1.EndpointSliceManagedBy {
		return nil
	}
	seen := map[ctrl.Request]bool{}
	var out []ctrl.Request
	for _, ep := range slice.Endpoints {
		if ep.TargetRef == nil || ep.TargetRef.Kind != "ClassicInstance" {
			continue
		}
		inst := &cafev1alpha1.ClassicInstance{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: slice.Namespace, Name: ep.TargetRef.Name}, inst); err != nil {
			continue
		}
		owner := metav1.GetControllerOf(inst)
		if owner == nil || owner.Kind != "ClassicSet" {
			continue
		}
		req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: slice.Namespace, Name: owner.Name}}
		if !seen[req] {
			seen[req] = true
			out = append(out, req)
		}
	}
	return out
}
