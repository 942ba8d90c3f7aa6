// Package gatekeeper opens the traffic-ready gate of pods that native
// controllers create for CAFE (a CafeDeployment's ReplicaSets and
// StatefulSets). An InPlaceSet opens its own pods' gates; a ReplicaSet or a
// StatefulSet knows nothing of the gate, so without this controller their
// pods would never become Ready.
//
// The gate keeper only ever opens a gate that no operation closed: a pod
// whose gate is False with a drain reason belongs to the release draining
// it.
package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podutil"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=replicasets;statefulsets,verbs=get;list;watch

// Reconciler opens gates.
type Reconciler struct {
	Client client.Client
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

var _ reconcile.Reconciler = &Reconciler{}

// SetupWithManager registers the controller for the pods it keeps.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	if r.Client == nil {
		return errors.New("gatekeeper: Client is required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Only pods whose gate waits to be opened: a native pod changes
		// about ten times in a release, and the rest are none of ours.
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
			pod, ok := obj.(*corev1.Pod)
			return ok && kept(pod) && waitsForGate(pod)
		}))).
		Named("gatekeeper").
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: 4})).
		Complete(r)
}

// kept: a pod of a CafeDeployment's native pod set that lists the gate.
func kept(pod *corev1.Pod) bool {
	_, inPlace := pod.Labels[cafev1alpha1.InPlaceSetLabel]
	return pod.Labels[cafev1alpha1.DeploymentLabel] != "" && !inPlace && lossless.HasGate(&pod.Spec)
}

// waitsForGate: a live pod whose gate is not open and not closed for an
// operation (that is the operation's business).
func waitsForGate(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp.IsZero() && !lossless.GateOpen(pod) && lossless.DrainReason(pod) == ""
}

// Reconcile opens the pod's gate once its containers have been ready for
// its pod set's minReadySeconds.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !kept(pod) || !waitsForGate(pod) {
		return ctrl.Result{}, nil
	}
	ready, since := podutil.ContainersReadySince(pod)
	if !ready {
		return ctrl.Result{}, nil
	}
	minReady, err := r.minReadySeconds(ctx, pod)
	if err != nil {
		return ctrl.Result{}, err
	}
	if wait := since.Add(minReady).Sub(r.Now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	err = lossless.SetGate(ctx, r.Client, pod, corev1.ConditionTrue, lossless.ReasonServing, "containers ready for minReadySeconds")
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// The pod changed (or was replaced) since this read: the change's
		// event brings it back if its gate still waits.
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// minReadySeconds is the pod's controller's minReadySeconds (0 without one).
func (r *Reconciler) minReadySeconds(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return 0, nil
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}
	var seconds int32
	switch ref.Kind {
	case "ReplicaSet":
		rs := &appsv1.ReplicaSet{}
		if err := r.Client.Get(ctx, key, rs); err != nil {
			return 0, fmt.Errorf("reading ReplicaSet of pod %s: %w", client.ObjectKeyFromObject(pod), err)
		}
		seconds = rs.Spec.MinReadySeconds
	case "StatefulSet":
		sts := &appsv1.StatefulSet{}
		if err := r.Client.Get(ctx, key, sts); err != nil {
			return 0, fmt.Errorf("reading StatefulSet of pod %s: %w", client.ObjectKeyFromObject(pod), err)
		}
		seconds = sts.Spec.MinReadySeconds
	}
	return time.Duration(seconds) * time.Second, nil
}
