package inplaceset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/conflict"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/ownwrites"
	"github.com/cafe-io/cafe/internal/podutil"
	"github.com/cafe-io/cafe/internal/revision"
	"github.com/cafe-io/cafe/internal/writebatch"
)

// +kubebuilder:rbac:groups=cafe.io,resources=inplacesets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=inplacesets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;delete

// Reconciler keeps an InPlaceSet's pods at its replicas and moves them to
// its template's revision through the lossless protocol, in place when only
// images, labels and annotations change.
type Reconciler struct {
	Client   client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Slices reads the EndpointSlices that list a draining pod.
	Slices *lossless.Slices
	// Now is the clock; tests may replace it.
	Now func() time.Time

	// written are the pod writes the cache does not show yet.
	written expectations
	// statusWrites tells a reconcile that its cached InPlaceSet does not yet
	// show the status the previous reconcile wrote.
	statusWrites ownwrites.Tracker
	// setPods reads a set's pods from the cache without copies.
	setPods *setPods
	// sliceWrites are the sets' EndpointSlice writes the cache does not
	// show yet (spec.endpoints).
	sliceWrites sliceWrites
	// dropped remembers when each pod was first seen dropped from its
	// set's slices, for the status of a held drain.
	dropped firstSeen
}

// staleRetry is how soon a reconcile that found its cache behind its own
// status write looks again (the watch event usually comes first).
const staleRetry = 200 * time.Millisecond

var _ reconcile.Reconciler = &Reconciler{}

// SetupWithManager registers the controller and the indexes it reads.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.Scheme == nil || r.Recorder == nil || r.Slices == nil {
		return errors.New("inplaceset: Client, Scheme, Recorder and Slices are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	informer, pods, err := podutil.CachedPods(ctx, mgr.GetCache())
	if err != nil {
		return err
	}
	if r.setPods, err = newSetPods(informer, pods); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &cafev1alpha1.InPlaceSet{}, endpointsServiceField, indexByEndpointsService); err != nil {
		return fmt.Errorf("indexing InPlaceSets by spec.endpoints.service: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&cafev1alpha1.InPlaceSet{}).
		// Pod status (readiness, image reported by the kubelet, gate) drives
		// every step of the protocol. Mapped by the controller reference
		// directly: Owns resolves the owner's kind through the REST mapper
		// on every event, a seventh of CAFE's allocations at 3,000 pods.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(owningSet)).
		Owns(&appsv1.ControllerRevision{}, builder.OnlyMetadata).
		Owns(&policyv1.PodDisruptionBudget{}, builder.OnlyMetadata).
		// A drained pod may be operated on only once EndpointSlices stop
		// listing it: slice changes wake the sets owning the listed pods.
		WatchesRawSource(r.Slices.Source(lossless.EnqueueOwnersOfSlicePods(pods, ownerIndex))).
		// A set that writes a Service's endpoints follows the Service (it
		// appears, gains or loses a selector).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.setsPublishing)).
		Named("inplaceset").
		// Sets are independent; one per unit releases at the same time.
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: 4})).
		Complete(r)
}

// owningSet maps a pod to its controlling InPlaceSet.
func owningSet(_ context.Context, pod client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, name := range ownerIndex(pod) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: name}})
	}
	return reqs
}

func ownerIndex(obj client.Object) []string {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "InPlaceSet" || ref.APIVersion != cafev1alpha1.GroupVersion.String() {
		return nil
	}
	return []string{ref.Name}
}

// Reconcile gathers the set's pods and revisions, plans, writes, and
// reports status. Every step is idempotent; the protocol's state is on the
// pods (and, with spec.endpoints, in the set's EndpointSlices), so a crash
// anywhere resumes cleanly.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	set := &cafev1alpha1.InPlaceSet{}
	if err := r.Client.Get(ctx, req.NamespacedName, set); err != nil {
		if apierrors.IsNotFound(err) {
			r.statusWrites.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !set.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, set)
	}
	if added, err := r.ensureFinalizer(ctx, set); added || err != nil {
		return ctrl.Result{}, err
	}
	if err := r.ensureEvictionBudget(ctx, set); err != nil {
		return ctrl.Result{}, err
	}
	// The status is patched from the cached set: from one older than the
	// last status written, a count that did not change since that older
	// version would be left out of the patch and stay wrong on the server
	// (e.g. a draining pod still counted available), and the CafeDeployment
	// shares its water level by these counts.
	if r.statusWrites.Behind(req.NamespacedName, set.ResourceVersion) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	set.Default()
	if why := specOutOfBounds(set); why != "" {
		return ctrl.Result{}, r.reportOutOfBounds(ctx, set, why)
	}

	s, err := r.gather(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	result := plan(s.input)
	execErr, statusErr := r.executeAndReport(ctx, set, s, result)
	if execErr != nil {
		log.Info("Executing plan failed; will retry", "err", execErr.Error())
	}
	if statusErr != nil {
		return ctrl.Result{}, errors.Join(execErr, statusErr)
	}
	if execErr != nil {
		// A pod changed under a write (the kubelet reported status).
		return conflict.Requeue(ctrl.Result{}, execErr)
	}
	return ctrl.Result{RequeueAfter: result.RequeueAfter}, nil
}

// executeAndReport performs the plan's writes and writes the status. The
// status is made of what was gathered and planned, never of the writes'
// outcome, except observedGeneration, which only a plan executed without
// error may advance: when it is current already (every reconcile of a
// release but the first after a spec change), the status write goes
// beside the pod writes, so a reconcile waits for one round trip instead
// of two and the set's next pod events are handled that much sooner.
func (r *Reconciler) executeAndReport(ctx context.Context, set *cafev1alpha1.InPlaceSet, s *scope, p planResult) (execErr, statusErr error) {
	if set.Status.ObservedGeneration != set.Generation {
		execErr = r.execute(ctx, set, s, p)
		return execErr, r.updateStatus(ctx, set, s, p, execErr)
	}
	// Its own copy: the status report writes the status (and the written
	// resourceVersion) into it while the pod writes read the set's template.
	reported := set.DeepCopy()
	var wg sync.WaitGroup
	wg.Go(func() { statusErr = r.updateStatus(ctx, reported, s, p, nil) })
	execErr = r.execute(ctx, set, s, p)
	wg.Wait()
	return execErr, statusErr
}

// scope is everything gathered for one reconcile.
type scope struct {
	input           planInput
	endpoints       *endpoints
	pods            []*corev1.Pod
	updateHash      string
	currentHash     string
	currentTemplate *corev1.PodTemplateSpec
	templates       map[string]*corev1.PodTemplateSpec
}

func (r *Reconciler) gather(ctx context.Context, set *cafev1alpha1.InPlaceSet) (*scope, error) {
	s := &scope{updateHash: revision.TemplateHash(&set.Spec.Template), templates: map[string]*corev1.PodTemplateSpec{}}
	revs := &appsv1.ControllerRevisionList{}
	if err := r.Client.List(ctx, revs, client.InNamespace(set.Namespace), client.MatchingLabels{setNameLabel: set.Name}); err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	// Recorded once: a create per reconcile would cost a failed write each.
	if !hasRevision(revs.Items, s.updateHash) {
		if err := ensureRevision(ctx, r.Client, r.Scheme, set, s.updateHash); err != nil {
			return nil, err
		}
	}
	s.templates[s.updateHash] = &set.Spec.Template
	for i := range revs.Items {
		hash := revs.Items[i].Labels[cafev1alpha1.RevisionHashLabel]
		if _, ok := s.templates[hash]; ok {
			continue
		}
		t, err := templateOf(&revs.Items[i])
		if err != nil {
			return nil, err
		}
		s.templates[hash] = t
	}

	// The pods are the cache's own objects (setPods): read, never modify.
	pods, err := r.setPods.of(set)
	if err != nil {
		return nil, err
	}
	maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(set.Spec.UpdateStrategy.MaxUnavailable, int(ptr.Deref(set.Spec.Replicas, 1)), false)
	if err != nil {
		return nil, fmt.Errorf("spec.updateStrategy.maxUnavailable: %w", err)
	}
	s.input = planInput{
		Replicas:        int(ptr.Deref(set.Spec.Replicas, 1)),
		Partition:       int(ptr.Deref(set.Spec.UpdateStrategy.Partition, 0)),
		MaxUnavailable:  maxUnavailable,
		MinReadySeconds: time.Duration(set.Spec.UpdateStrategy.MinReadySeconds) * time.Second,
		Paused:          set.Spec.UpdateStrategy.Paused,
		Now:             r.Now(),
	}
	if s.endpoints, err = r.gatherEndpoints(ctx, set); err != nil {
		return nil, err
	}
	s.input.OwnEndpoints = s.endpoints.service != nil
	oldCount := map[string]int{}
	inUse := map[string]bool{s.updateHash: true}
	eligible := inPlaceEligibility(s.templates, s.updateHash)
	// Sized once: grown by append, these were most of what CAFE allocated
	// at 10,000 pods (every reconcile reads all of its set's pods).
	s.pods = make([]*corev1.Pod, 0, len(pods))
	s.input.Pods = make([]podState, 0, len(pods))
	for _, pod := range pods {
		s.pods = append(s.pods, pod)
		st, err := r.podState(ctx, pod, s, eligible)
		if err != nil {
			return nil, err
		}
		r.written.apply(&st, s.updateHash, s.input.Now)
		s.input.Pods = append(s.input.Pods, st)
		hash := pod.Labels[cafev1alpha1.RevisionHashLabel]
		inUse[hash] = true
		if !st.Updated && !st.Terminating {
			oldCount[hash]++
		}
	}
	s.currentHash = mostCommon(oldCount, set.Status.CurrentRevision, s.updateHash)
	s.currentTemplate = s.templates[s.currentHash]
	if err := gcRevisions(ctx, r.Client, revs.Items, inUse); err != nil {
		return nil, err
	}
	return s, nil
}

func (r *Reconciler) podState(ctx context.Context, pod *corev1.Pod, s *scope, inPlaceEligible func(fromHash string) bool) (podState, error) {
	hash := pod.Labels[cafev1alpha1.RevisionHashLabel]
	containersReady, since := podutil.ContainersReadySince(pod)
	st := podState{
		Pod:              pod,
		Updated:          hash == s.updateHash,
		Terminating:      !pod.DeletionTimestamp.IsZero(),
		Ready:            podutil.Ready(pod),
		ContainersReady:  containersReady,
		ReadySince:       since,
		GateOpen:         lossless.GateOpen(pod),
		DrainReason:      lossless.DrainReason(pod),
		InPlacePending:   inPlacePending(pod),
		InPlaceEligible:  inPlaceEligible(hash),
		DeleteRequested:  pod.Annotations[cafev1alpha1.DrainRequestedByAnnotation] != "",
		MigrateRequested: pod.Annotations[cafev1alpha1.MigrationRequestedAnnotation] != "",
	}
	st.TrafficGuarded = slices.ContainsFunc(pod.Finalizers, cafev1alpha1.IsTrafficFinalizer)
	if s.input.OwnEndpoints {
		st.Dropped, st.Listed = s.endpoints.carries(pod.UID)
		st.Dropped = st.Dropped && !st.Listed
	}
	switch {
	case st.DrainReason != "":
		held, err := r.slicesHolding(ctx, pod, s.endpoints)
		if err != nil {
			return st, err
		}
		st.Drained = lossless.Drained(pod, held)
		st.TrafficHolders = lossless.TrafficHolders(pod, held)
	case s.input.OwnEndpoints && !st.Updated && !st.Listed:
		// Drained by slice: the pod stays Ready, only what lists or
		// guards it counts.
		held, err := r.slicesHolding(ctx, pod, s.endpoints)
		if err != nil {
			return st, err
		}
		st.TrafficHolders = lossless.ListedHolders(pod, held)
		st.Drained = len(st.TrafficHolders) == 0
	}
	st.DroppedSince = r.dropped.since(pod.UID, st.Dropped && !st.Updated && st.DrainReason == "", s.input.Now)
	return st, nil
}

// execute performs the plan's writes. NotFound and AlreadyExists mean the
// cache was behind and the write already happened or is moot; conflicts are
// retried by the next reconcile.
func (r *Reconciler) execute(ctx context.Context, set *cafev1alpha1.InPlaceSet, s *scope, p planResult) error {
	// The writes of one plan are independent of each other.
	var w writebatch.Batch
	for _, g := range p.CloseGate {
		w.Add(func() error {
			err := lossless.SetGate(ctx, r.Client, g.Pod, corev1.ConditionFalse, g.Reason, "draining traffic before "+operationOf(g.Reason))
			if err == nil {
				r.written.expect(g.Pod.UID, r.Now(), func(x *expectation) { x.Gate, x.Reason = corev1.ConditionFalse, g.Reason })
			}
			return ignoreGone(err)
		})
	}
	for _, pod := range p.UpdateInPlace {
		w.Add(func() error { return r.updateInPlace(ctx, set, s, pod) })
	}
	for _, pod := range p.Delete {
		// No event per pod: at release scale events are the largest share of
		// API writes; the log and the set's status say it.
		w.Add(func() error {
			err := lossless.DeleteDrained(ctx, r.Client, pod)
			if err == nil {
				r.written.expect(pod.UID, r.Now(), func(x *expectation) { x.Deleted = true })
				ctrl.LoggerFrom(ctx).V(1).Info("Deleted drained pod", "pod", klog.KObj(pod))
			}
			return ignoreGone(err)
		})
	}
	for _, pod := range p.OpenGate {
		w.Add(func() error {
			err := lossless.SetGate(ctx, r.Client, pod, corev1.ConditionTrue, lossless.ReasonServing, "")
			if err == nil {
				r.written.expect(pod.UID, r.Now(), func(x *expectation) { x.Gate, x.Reason = corev1.ConditionTrue, lossless.ReasonServing })
			}
			if apierrors.IsConflict(err) {
				// The pod changed since it was read (the gate opens only on
				// the version read): its event plans it again.
				return nil
			}
			return ignoreGone(err)
		})
	}
	// The slices are written one after another (publish orders them), beside
	// the pod writes: no pod write of this plan waits on them.
	w.Add(func() error { return r.publish(ctx, set, s, p) })
	return errors.Join(w.Run(writebatch.Concurrency), r.createPods(ctx, set, s, p))
}

func (r *Reconciler) updateInPlace(ctx context.Context, set *cafev1alpha1.InPlaceSet, s *scope, pod *corev1.Pod) error {
	from := s.templates[pod.Labels[cafev1alpha1.RevisionHashLabel]]
	patch, err := inPlacePatch(pod, from, &set.Spec.Template, s.updateHash, r.Now())
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, podutil.WriteTarget(pod), client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return ignoreGone(fmt.Errorf("updating pod %s in place: %w", describe(pod), err))
	}
	r.written.expect(pod.UID, r.Now(), func(x *expectation) { x.Revision = s.updateHash })
	ctrl.LoggerFrom(ctx).V(1).Info("Updated pod in place", "pod", klog.KObj(pod), "revision", s.updateHash)
	return nil
}

func operationOf(reason string) string {
	if reason == lossless.ReasonDrainForDelete {
		return "deletion"
	}
	return "update"
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// mostCommon returns the revision most old pods run (the current revision),
// keeping the recorded one on ties and the update revision when none is old.
func mostCommon(counts map[string]int, recorded, update string) string {
	best, n := update, 0
	for hash, c := range counts {
		if c > n || (c == n && hash == recorded) {
			best, n = hash, c
		}
	}
	return best
}
