package cafedeployment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/ownwrites"
	"github.com/cafe-io/cafe/internal/release/plan"
	"github.com/cafe-io/cafe/internal/revision"
)

// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=inplacesets,verbs=get;list;watch;create;update;patch;delete

const (
	// fieldOwner is the server-side-apply manager of the pod sets' specs.
	fieldOwner = client.FieldOwner("cafe-cafedeployment")
)

// Reconciler releases a CafeDeployment's template over its topology units,
// group by group, through one pod set per unit.
type Reconciler struct {
	Client   client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Now      func() time.Time

	// statusWrites tells a reconcile that its cached CafeDeployment does not
	// yet show the status the previous reconcile wrote.
	statusWrites ownwrites.Tracker
}

// staleRetry is how soon a reconcile that found its cache behind its own
// status write looks again (the watch event usually comes first).
const staleRetry = 200 * time.Millisecond

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.Scheme == nil || r.Recorder == nil {
		return errors.New("cafedeployment: Client, Scheme and Recorder are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&cafev1alpha1.CafeDeployment{}).
		// Pod-set status (updated and serving pods) is what finishes a group.
		Owns(&cafev1alpha1.InPlaceSet{}).
		Owns(&appsv1.ReplicaSet{}).
		Owns(&appsv1.StatefulSet{}).
		// In the native modes the release runs the lossless protocol itself:
		// pod readiness and gates, and EndpointSlices letting go of drained
		// pods, drive its steps. (InPlaceSet pods are their set's business.)
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(deploymentOfNativePod), builder.WithPredicates(predicate.NewPredicateFuncs(isNativePod))).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(lossless.EnqueueOwnersOfSlicePods(r.Client, drainingDeployment))).
		// A unit that regains a schedulable node takes its rescheduled
		// replicas back; only schedulability changes matter, not heartbeats.
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.reschedulingDeployments), builder.WithPredicates(schedulabilityChanged)).
		Named("cafedeployment").
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(r)
}

// isNativePod: a pod of a CafeDeployment's ReplicaSet or StatefulSet.
func isNativePod(obj client.Object) bool {
	labels := obj.GetLabels()
	_, inPlace := labels[cafev1alpha1.InPlaceSetLabel]
	return labels[cafev1alpha1.DeploymentLabel] != "" && !inPlace
}

// deploymentOfNativePod maps a native pod to its CafeDeployment.
func deploymentOfNativePod(_ context.Context, obj client.Object) []reconcile.Request {
	if !isNativePod(obj) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetLabels()[cafev1alpha1.DeploymentLabel]}}}
}

// drainingDeployment names the CafeDeployment of a native pod that is
// draining (only such pods wait on EndpointSlices).
func drainingDeployment(obj client.Object) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok || !isNativePod(pod) || lossless.DrainReason(pod) == "" {
		return nil
	}
	return []string{pod.Labels[cafev1alpha1.DeploymentLabel]}
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
	rescheduled, requeue, err := r.rescheduled(ctx, cd)
	if err != nil {
		return ctrl.Result{}, err
	}
	p, err := plan.New(rescheduled.spec)
	if err != nil {
		setCondition(cd, cafev1alpha1.CafeDeploymentProgressingCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentInvalidTopologyReason, err.Error())
		return ctrl.Result{}, r.patchStatus(ctx, before, cd)
	}
	updateRevision := revision.TemplateHash(&cd.Spec.Template)
	fast := cd.FastReleaseRequested(updateRevision)
	if fast {
		p = p.SingleGroup()
	}

	sets, err := r.loadPodSets(ctx, cd, updateRevision)
	if err != nil {
		return ctrl.Result{}, err
	}
	views := sets.views()
	firstRevision := cd.Status.UpdateRevision == ""
	newRelease := cd.Status.UpdateRevision != updateRevision
	if newRelease && cd.Status.UpdateRevision != "" {
		cd.Status.CurrentRevision = cd.Status.UpdateRevision
	}
	if newRelease {
		if err := recordRevision(ctx, r.Client, r.Scheme, cd, updateRevision); err != nil {
			return ctrl.Result{}, err
		}
	}
	cd.Status.UpdateRevision = updateRevision
	if cd.Status.CurrentRevision == "" {
		cd.Status.CurrentRevision = updateRevision
	}

	now := metav1.NewTime(r.Now())
	cd.Status.Release = stepRelease(releaseInput{
		Plan:           p,
		Release:        cd.Status.Release,
		NewRelease:     newRelease,
		Progress:       progressOf(views),
		WaitForConfirm: cd.Spec.Strategy.WaitsForConfirm() && !fast,
		Paused:         cd.Spec.Strategy.Pause,
		Confirmation:   confirmationOf(cd),
		Now:            now,
	})
	if firstRevision {
		// Creating the first pods is not a release of a change: nothing to
		// compare, confirm or roll back to, so every group is released.
		cd.Status.Release.Phase = cafev1alpha1.ReleasePhaseCompleted
		cd.Status.Release.CurrentGroup = cd.Status.Release.TotalGroups
	}
	if cd.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted {
		cd.Status.CurrentRevision = updateRevision
	}

	applyErr := r.applyPodSets(ctx, cd, p, sets, views)
	setStatus(cd, p, views, applyErr)
	for i := range cd.Status.Units {
		if m := rescheduled.moved[cd.Status.Units[i].Name]; m > 0 {
			cd.Status.Units[i].RescheduledReplicas = ptr.To(m)
		}
	}
	if err := r.patchStatus(ctx, before, cd); err != nil {
		return ctrl.Result{}, errors.Join(applyErr, err)
	}
	r.reportRescheduling(before, cd)
	if before.Status.Release.Phase != cd.Status.Release.Phase {
		r.Recorder.Eventf(cd, nil, corev1.EventTypeNormal, "Release"+string(cd.Status.Release.Phase), "Release",
			"Release of revision %s: %s at group %d of %d", updateRevision, cd.Status.Release.Phase, ptr.Deref(cd.Status.Release.CurrentGroup, 0), ptr.Deref(cd.Status.Release.TotalGroups, 0))
	}
	return ctrl.Result{RequeueAfter: requeue}, applyErr
}

func progressOf(views map[string]unitView) map[string]unitProgress {
	out := map[string]unitProgress{}
	for unit, v := range views {
		out[unit] = unitProgress{UpdatedAvailable: v.UpdatedAvailable, Observed: v.Observed}
	}
	return out
}

// confirmationOf reads the webhook-stamped confirmation, ignoring one
// without an authenticated user.
func confirmationOf(cd *cafev1alpha1.CafeDeployment) *confirmation {
	a := cd.Annotations
	group, err := strconv.Atoi(a[cafev1alpha1.ConfirmGroupAnnotation])
	if err != nil || a[cafev1alpha1.ConfirmedByAnnotation] == "" {
		return nil
	}
	at, err := time.Parse(time.RFC3339, a[cafev1alpha1.ConfirmedAtAnnotation])
	if err != nil {
		at = time.Time{}
	}
	return &confirmation{Group: int32(group), User: a[cafev1alpha1.ConfirmedByAnnotation], At: metav1.NewTime(at)}
}

// applyPodSets moves every unit's pod set to the partition of the
// release's current group, with its share of the unavailability budget.
func (r *Reconciler) applyPodSets(ctx context.Context, cd *cafev1alpha1.CafeDeployment, p plan.Plan, sets podSets, views map[string]unitView) error {
	group := int(ptr.Deref(cd.Status.Release.CurrentGroup, 0))
	if cd.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted {
		group = len(p.Groups)
	}
	partitions := plan.Partition(p, group)
	target := p.UpdatedTarget(group)

	perUnit := map[string]int32{}
	active := map[string]bool{}
	var budget, inactiveUnavailable int32
	for _, u := range p.Units {
		m, err := cafev1alpha1.ResolveIntOrPercent(ptr.Deref(cd.Spec.Strategy.MaxUnavailable, defaultMaxUnavailable), p.UnitReplicas[u], false)
		if err != nil {
			return fmt.Errorf("spec.strategy.maxUnavailable: %w", err)
		}
		perUnit[u] = max(m, 1)
		budget += perUnit[u]
		v := views[u]
		// A unit is active while it releases, scales or has a pod to drain
		// for a requested deletion: only active units get a budget share.
		active[u] = !v.Exists || v.Updated < target[u] || v.SpecReplicas != p.UnitReplicas[u] || v.DeleteRequested > 0
		if !active[u] {
			inactiveUnavailable += max(v.Replicas-v.Available, 0)
		}
	}
	if cd.Spec.Strategy.MinAvailable != nil {
		minAvailable, err := cafev1alpha1.ResolveIntOrPercent(*cd.Spec.Strategy.MinAvailable, p.Total(), true)
		if err != nil {
			return fmt.Errorf("spec.strategy.minAvailable: %w", err)
		}
		budget = p.Total() - minAvailable - inactiveUnavailable
	}
	shares := splitBudget(p.Units, active, perUnit, budget)

	var errs []error
	for _, u := range p.Units {
		surge, err := cafev1alpha1.ResolveIntOrPercent(ptr.Deref(cd.Spec.Strategy.MaxSurgeSizeInGroup, intstr.FromInt32(0)), p.UnitReplicas[u], true)
		if err != nil {
			return fmt.Errorf("spec.strategy.maxSurgeSizeInGroup: %w", err)
		}
		if !active[u] {
			surge = 0
		}
		settings := unitSettings{Replicas: p.UnitReplicas[u], Partition: partitions[u], MaxUnavailable: shares[u], MaxSurge: surge}
		if err := sets.apply(ctx, u, settings); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var defaultMaxUnavailable = intstrOne

func (r *Reconciler) patchStatus(ctx context.Context, before, cd *cafev1alpha1.CafeDeployment) error {
	if equality.Semantic.DeepEqual(before.Status, cd.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, cd, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("updating status: %w", client.IgnoreNotFound(err))
	}
	r.statusWrites.Wrote(client.ObjectKeyFromObject(cd), cd.ResourceVersion)
	return nil
}

func setCondition(cd *cafev1alpha1.CafeDeployment, t string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&cd.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: message, ObservedGeneration: cd.Generation})
}
