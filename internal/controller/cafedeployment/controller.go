package cafedeployment

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/analysis"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment/podset"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/ownwrites"
	"github.com/cafe-io/cafe/internal/podutil"
	"github.com/cafe-io/cafe/internal/release/plan"
	"github.com/cafe-io/cafe/internal/revision"
	"github.com/cafe-io/cafe/internal/statuspatch"
)

// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments/status,verbs=get;update;patch

// Reconciler releases a CafeDeployment's template over its topology units,
// group by group, through one pod set per unit.
type Reconciler struct {
	Client   client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Now      func() time.Time
	// Slices reads the EndpointSlices that list a draining native pod.
	Slices *lossless.Slices
	// Prometheus is what traffic steps' analyses query; nil without one
	// (a step with an analysis then waits, saying so).
	Prometheus *analysis.Prometheus

	// statusWrites tells a reconcile that its cached CafeDeployment does not
	// yet show the status the previous reconcile wrote.
	statusWrites ownwrites.Tracker
	// podWrites: the same for the gates it sets on native pods.
	podWrites ownwrites.Tracker
}

// staleRetry is how soon a reconcile that found its cache behind its own
// status write looks again (the watch event usually comes first).
const staleRetry = 200 * time.Millisecond

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.Scheme == nil || r.Recorder == nil || r.Slices == nil {
		return errors.New("cafedeployment: Client, Scheme, Recorder and Slices are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	_, pods, err := podutil.CachedPods(ctx, mgr.GetCache())
	if err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).For(&cafev1alpha1.CafeDeployment{})
	// Pod-set status (updated and serving pods) is what finishes a group.
	for _, owned := range podset.OwnedTypes() {
		b = b.Owns(owned)
	}
	return b.
		// In the native modes the release runs the lossless protocol itself:
		// pod readiness and gates, and EndpointSlices letting go of drained
		// pods, drive its steps. (InPlaceSet pods are their set's business.)
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podset.DeploymentOfNativePod), builder.WithPredicates(predicate.NewPredicateFuncs(podset.IsNativePod))).
		WatchesRawSource(r.Slices.Source(lossless.EnqueueOwnersOfSlicePods(pods, podset.DrainingDeployment))).
		// A unit that regains a schedulable node takes its rescheduled
		// replicas back; only schedulability changes matter, not heartbeats.
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.reschedulingDeployments), builder.WithPredicates(schedulabilityChanged)).
		Named("cafedeployment").
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: 2})).
		Complete(r)
}

// Reconcile plans the release from the spec, advances its record from the
// pod sets' progress, applies each unit's pod set, and reports status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cd := &cafev1alpha1.CafeDeployment{}
	if err := r.Client.Get(ctx, req.NamespacedName, cd); err != nil {
		if apierrors.IsNotFound(err) {
			r.statusWrites.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cd.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	// The release record is the status: deciding from one older than the
	// last one written would step the release back (and raise partitions).
	if r.statusWrites.Behind(req.NamespacedName, cd.ResourceVersion) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	before := cd.DeepCopy()
	cd.Default()
	resched, requeue, err := r.reschedulingFor(ctx, cd)
	if err != nil {
		return ctrl.Result{}, err
	}
	p, err := plan.New(resched.spec)
	if err != nil {
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentInvalidTopologyReason, err.Error())
		return ctrl.Result{}, r.patchStatus(ctx, before, cd)
	}
	updateRevision := revision.DeploymentHash(cd)
	fast := cd.FastReleaseRequested(updateRevision)
	if fast {
		p = p.SingleGroup()
	}
	sets, err := podset.Load(ctx, podset.Env{Client: r.Client, Slices: r.Slices, Scheme: r.Scheme, Now: r.Now(), PodWrites: &r.podWrites}, cd, revision.TemplateHash(&cd.Spec.Template))
	if errors.Is(err, podset.ErrPodCacheBehind) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	reports := sets.Reports()
	requeue = soonest(requeue, heldDrainRecheck(reports))

	// Decide, writing nothing yet. Settings the spec cannot be resolved to
	// fail the release like a pod set that cannot be applied.
	revs := advanceRelease(cd, p, reports, updateRevision, fast, metav1.NewTime(r.Now()))
	settings, applyErr := unitSettingsFor(cd, p, reports, fast)

	// Write. The new revision goes into the history before a status names
	// it the update revision: `cafe deploy rollback` restores from there.
	if revs.isNew {
		if err := recordRevision(ctx, r.Client, r.Scheme, cd, updateRevision, revs.outgoing); err != nil {
			return ctrl.Result{}, err
		}
	}
	if applyErr == nil {
		applyErr = applyUnits(ctx, sets, p.Units, settings)
	}
	trafficWake, trafficErr := r.syncTraffic(ctx, cd)
	requeue = soonest(requeue, trafficWake)
	setStatus(cd, p, reports, applyErr)
	setTrafficCondition(cd, trafficErr)
	setRescheduledReplicas(cd, resched.moved)
	if err := r.patchStatus(ctx, before, cd); err != nil {
		return ctrl.Result{}, errors.Join(applyErr, trafficErr, err)
	}
	r.recordEvents(before, cd)
	if fast && revs.isNew {
		// A fast release skips confirmations: say who asked (stamped by
		// CAFE's webhook).
		r.Recorder.Eventf(cd, nil, corev1.EventTypeNormal, "FastRelease", "Release", "Revision %s is released fast (one group, no confirmation), asked for by %s",
			updateRevision, orUnknown(cd.Annotations[cafev1alpha1.FastReleaseByAnnotation]))
	}
	if errors.Is(trafficErr, errTrafficConflict) {
		// The route changed under the write: decide again on the new one.
		requeue, trafficErr = soonest(requeue, staleRetry), nil
	}
	return ctrl.Result{RequeueAfter: requeue}, errors.Join(applyErr, trafficErr)
}

// patchStatus writes the status if the reconcile changed it, and remembers
// the write so the next reconcile does not decide from an older cache.
func (r *Reconciler) patchStatus(ctx context.Context, before, cd *cafev1alpha1.CafeDeployment) error {
	wrote, err := statuspatch.IfChanged(ctx, r.Client, before, cd, func(cd *cafev1alpha1.CafeDeployment) any { return cd.Status })
	if err != nil {
		return err
	}
	if wrote {
		r.statusWrites.Wrote(client.ObjectKeyFromObject(cd), cd.ResourceVersion)
	}
	return nil
}

// recordEvents tells what the status write changed: replicas moved out of
// or back to a unit, and the release's phase.
func (r *Reconciler) recordEvents(before, cd *cafev1alpha1.CafeDeployment) {
	r.reportRescheduling(before, cd)
	rel := cd.Status.Release
	if before.Status.Release.Phase != rel.Phase {
		r.Recorder.Eventf(cd, nil, corev1.EventTypeNormal, "Release"+string(rel.Phase), "Release",
			"Release of revision %s: %s at group %d of %d", cd.Status.UpdateRevision, rel.Phase, ptr.Deref(rel.CurrentGroup, 0), ptr.Deref(rel.TotalGroups, 0))
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func setCondition(cd *cafev1alpha1.CafeDeployment, t string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&cd.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: message, ObservedGeneration: cd.Generation})
}
