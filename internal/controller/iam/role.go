package iam

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/iam"
	"github.com/cafe-io/cafe/internal/ssa"
)

// +kubebuilder:rbac:groups=cafe.io,resources=iamroles;iamrolebindings,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=iamroles/status;iamrolebindings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings;rolebindings,verbs=get;list;watch;create;update;patch;delete;escalate;bind
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// FieldOwner is the field manager of what the controllers project.
const FieldOwner = client.FieldOwner("cafe-iam")

// RoleReconciler keeps each IAMRole's ClusterRole.
type RoleReconciler struct {
	Client   client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
}

// SetupWithManager watches IAMRoles (a role's change reaches every role
// that includes it) and the ClusterRoles it keeps.
func (r *RoleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		Named("iamrole").
		For(&cafev1alpha1.IAMRole{}).
		Owns(&rbacv1.ClusterRole{}).
		Watches(&cafev1alpha1.IAMRole{}, handler.EnqueueRequestsFromMapFunc(r.includers)).
		Complete(r)
}

// includers are the roles whose rules depend on the changed one: those
// that include it, directly or through other roles.
func (r *RoleReconciler) includers(ctx context.Context, obj client.Object) []ctrl.Request {
	roles := &cafev1alpha1.IAMRoleList{}
	if err := r.Client.List(ctx, roles); err != nil {
		return nil
	}
	var out []ctrl.Request
	for _, name := range iam.Includers(obj.GetName(), roles.Items) {
		out = append(out, ctrl.Request{NamespacedName: client.ObjectKey{Name: name}})
	}
	return out
}

// Reconcile projects one IAMRole.
func (r *RoleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	role := &cafev1alpha1.IAMRole{}
	if err := r.Client.Get(ctx, req.NamespacedName, role); err != nil {
		// A deleted role's ClusterRole goes with it (owner reference).
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	roles, err := r.allRoles(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := role.Status.DeepCopy()
	rules, expandErr := iam.Expand(role.Name, roles)
	switch {
	case errors.Is(expandErr, iam.ErrCycle):
		r.notProjected(role, cafev1alpha1.IAMReasonIncludeCycle, "spec.includes: "+expandErr.Error())
	case errors.Is(expandErr, iam.ErrMissingRole):
		r.notProjected(role, cafev1alpha1.IAMReasonRoleNotFound, "spec.includes: "+expandErr.Error())
	case expandErr != nil:
		return ctrl.Result{}, expandErr
	default:
		cr := iam.ClusterRole(role, rules)
		if err := r.apply(ctx, role, cr); err != nil {
			setReady(&role.Status.Conditions, role.Generation, metav1.ConditionFalse, cafev1alpha1.IAMReasonRBACError, err.Error())
			_ = r.writeStatus(ctx, role, before)
			return ctrl.Result{}, err
		}
		role.Status.ClusterRole, role.Status.RuleCount = cr.Name, int32(len(rules))
		setReady(&role.Status.Conditions, role.Generation, metav1.ConditionTrue, cafev1alpha1.IAMReasonProjected,
			fmt.Sprintf("ClusterRole %s holds %d rules", cr.Name, len(rules)))
	}
	role.Status.ObservedGeneration = role.Generation
	return ctrl.Result{}, r.writeStatus(ctx, role, before)
}

// notProjected says why the role's ClusterRole is not what its spec says.
// The ClusterRole keeps its last projection: a spec that cannot be
// resolved grants nothing new, and a misnamed include does not take its
// holders' rights away; the condition and the event say so.
func (r *RoleReconciler) notProjected(role *cafev1alpha1.IAMRole, reason, msg string) {
	if !meta.IsStatusConditionPresentAndEqual(role.Status.Conditions, cafev1alpha1.IAMReadyCondition, metav1.ConditionFalse) {
		r.Recorder.Eventf(role, nil, corev1.EventTypeWarning, reason, "Project", "%s", msg)
	}
	setReady(&role.Status.Conditions, role.Generation, metav1.ConditionFalse, reason, msg)
}

func (r *RoleReconciler) allRoles(ctx context.Context) (map[string]*cafev1alpha1.IAMRole, error) {
	list := &cafev1alpha1.IAMRoleList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing IAMRoles: %w", err)
	}
	out := make(map[string]*cafev1alpha1.IAMRole, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

// apply writes cr, owned by role, server-side with force: CAFE's fields
// win over any hand edit.
func (r *RoleReconciler) apply(ctx context.Context, role *cafev1alpha1.IAMRole, cr *rbacv1.ClusterRole) error {
	return applyOwned(ctx, r.Client, r.Scheme, role, cr)
}

func (r *RoleReconciler) writeStatus(ctx context.Context, role *cafev1alpha1.IAMRole, before *cafev1alpha1.IAMRoleStatus) error {
	if equality.Semantic.DeepEqual(before, &role.Status) {
		return nil
	}
	if err := r.Client.Status().Update(ctx, role); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("writing the status of IAMRole %s: %w", role.Name, err)
	}
	return nil
}

// applyOwned applies obj with a controller reference to owner, unless
// the cached object already is exactly that: a reconcile that changes
// nothing writes nothing, so an event that touches many bindings (a
// namespace relabelled, a role's status) costs reads, not thousands of
// applies. A hand edit makes the cached object differ, and is undone.
func applyOwned(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner, obj client.Object) error {
	if err := controllerutil.SetControllerReference(owner, obj, scheme); err != nil {
		return err
	}
	existing := obj.DeepCopyObject().(client.Object)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); err == nil && upToDate(existing, obj) {
		return nil
	}
	body, err := ssa.Body(obj)
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, body, FieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// upToDate: existing has desired's controller, labels and content (rules,
// or role reference and subjects), and is not being deleted.
func upToDate(existing, desired client.Object) bool {
	have, want := metav1.GetControllerOf(existing), metav1.GetControllerOf(desired)
	if have == nil || want == nil || have.UID != want.UID || existing.GetDeletionTimestamp() != nil {
		return false
	}
	for k, v := range desired.GetLabels() {
		if existing.GetLabels()[k] != v {
			return false
		}
	}
	content := projectedContent(desired)
	return content != nil && equality.Semantic.DeepEqual(projectedContent(existing), content)
}

// projectedContent is what CAFE projects into an RBAC object, beyond its
// metadata; nil for a kind it does not project.
func projectedContent(obj client.Object) any {
	switch o := obj.(type) {
	case *rbacv1.ClusterRole:
		return []any{o.Rules, o.AggregationRule}
	case *rbacv1.ClusterRoleBinding:
		return []any{o.RoleRef, o.Subjects}
	case *rbacv1.RoleBinding:
		return []any{o.RoleRef, o.Subjects}
	}
	return nil
}

func setReady(conds *[]metav1.Condition, gen int64, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{Type: cafev1alpha1.IAMReadyCondition, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
}
