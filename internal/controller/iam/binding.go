package iam

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/iam"
	"github.com/cafe-io/cafe/internal/writebatch"
)

// BindingReconciler keeps each IAMRoleBinding's RBAC bindings.
type BindingReconciler struct {
	Client client.Client
	// APIReader reads past the cache: whether a binding of a name the
	// cache says is gone exists again.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
}

// SetupWithManager watches IAMRoleBindings, the bindings they project,
// IAMRoles (a binding waits for its role) and namespaces (a selector's
// matches change with their labels).
func (r *BindingReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		Named("iamrolebinding").
		For(&cafev1alpha1.IAMRoleBinding{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&rbacv1.ClusterRoleBinding{}).
		Watches(&cafev1alpha1.IAMRole{}, handler.EnqueueRequestsFromMapFunc(r.bindingsOfRole)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.selectingBindings)).
		Complete(r)
}

func (r *BindingReconciler) bindingsOfRole(ctx context.Context, obj client.Object) []ctrl.Request {
	return r.bindingsWhere(ctx, func(b *cafev1alpha1.IAMRoleBinding) bool { return b.Spec.Role == obj.GetName() })
}

// selectingBindings are the bindings a namespace event may concern: those
// that name it or select it as it is now, and those that have a RoleBinding
// in it (it may have left their scope, or be going). Any other binding is
// untouched by it, so a relabelled namespace costs a handful of
// reconciles, not one per binding of the cluster.
func (r *BindingReconciler) selectingBindings(ctx context.Context, obj client.Object) []ctrl.Request {
	ns := obj.GetName()
	present := map[string]bool{}
	rbs := &rbacv1.RoleBindingList{}
	if err := r.Client.List(ctx, rbs, client.InNamespace(ns), client.HasLabels{cafev1alpha1.IAMBindingLabel}); err == nil {
		for _, rb := range rbs.Items {
			present[rb.Labels[cafev1alpha1.IAMBindingLabel]] = true
		}
	}
	nsLabels := labels.Set(obj.GetLabels())
	return r.bindingsWhere(ctx, func(b *cafev1alpha1.IAMRoleBinding) bool {
		return present[b.Name] || inScope(b.Spec.Scope, ns, nsLabels)
	})
}

// inScope: the scope (not cluster-wide) names the namespace or selects its
// labels.
func inScope(scope cafev1alpha1.IAMScope, ns string, nsLabels labels.Set) bool {
	if scope.NamespaceSelector == nil {
		return slices.Contains(scope.Namespaces, ns)
	}
	sel, err := metav1.LabelSelectorAsSelector(scope.NamespaceSelector)
	return err == nil && sel.Matches(nsLabels)
}

func (r *BindingReconciler) bindingsWhere(ctx context.Context, match func(*cafev1alpha1.IAMRoleBinding) bool) []ctrl.Request {
	list := &cafev1alpha1.IAMRoleBindingList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil
	}
	var out []ctrl.Request
	for i := range list.Items {
		if match(&list.Items[i]) {
			out = append(out, ctrl.Request{NamespacedName: client.ObjectKey{Name: list.Items[i].Name}})
		}
	}
	return out
}

// Reconcile projects one IAMRoleBinding: its bindings where its scope
// says, none elsewhere.
func (r *BindingReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &cafev1alpha1.IAMRoleBinding{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.pruneDeleted(ctx, req.Name)
		}
		return ctrl.Result{}, err
	}
	before := b.Status.DeepCopy()
	err := r.project(ctx, b)
	b.Status.ObservedGeneration = b.Generation
	if !equality.Semantic.DeepEqual(before, &b.Status) {
		if serr := r.Client.Status().Update(ctx, b); serr != nil && !apierrors.IsConflict(serr) {
			err = errors.Join(err, fmt.Errorf("writing the status of IAMRoleBinding %s: %w", b.Name, serr))
		}
	}
	return ctrl.Result{}, err
}

// project writes the binding's RBAC bindings and its Ready condition. A
// binding whose role does not exist grants nothing: its bindings are
// removed until the role exists.
func (r *BindingReconciler) project(ctx context.Context, b *cafev1alpha1.IAMRoleBinding) error {
	role := &cafev1alpha1.IAMRole{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: b.Spec.Role}, role)
	switch {
	case apierrors.IsNotFound(err):
		r.notReady(b, cafev1alpha1.IAMReasonRoleNotFound, fmt.Sprintf("spec.role: IAMRole %s does not exist; the binding grants nothing", b.Spec.Role))
		b.Status.NamespaceCount = 0
		return r.prune(ctx, b, nil, false)
	case err != nil:
		return fmt.Errorf("reading IAMRole %s: %w", b.Spec.Role, err)
	}
	if b.Spec.Scope.Cluster {
		if err := applyOwned(ctx, r.Client, r.Scheme, b, iam.ClusterRoleBinding(b)); err != nil {
			r.notReady(b, cafev1alpha1.IAMReasonRBACError, err.Error())
			return err
		}
		b.Status.NamespaceCount = 0
		setReady(&b.Status.Conditions, b.Generation, metav1.ConditionTrue, cafev1alpha1.IAMReasonProjected,
			fmt.Sprintf("ClusterRoleBinding %s grants ClusterRole %s cluster-wide", iam.BindingName(b.Name), iam.ClusterRoleName(b.Spec.Role)))
		return r.prune(ctx, b, nil, true)
	}
	namespaces, err := r.namespacesInScope(ctx, b.Spec.Scope)
	if err != nil {
		return err
	}
	errs := []error{r.applyRoleBindings(ctx, b, namespaces), r.prune(ctx, b, namespaces, false)}
	b.Status.NamespaceCount = int32(len(namespaces))
	switch err := errors.Join(errs...); {
	case err != nil:
		r.notReady(b, cafev1alpha1.IAMReasonRBACError, err.Error())
		return err
	case len(namespaces) == 0:
		r.notReady(b, cafev1alpha1.IAMReasonNoNamespaceMatched, "spec.scope: no namespace matches; the binding grants nothing until one does")
	default:
		setReady(&b.Status.Conditions, b.Generation, metav1.ConditionTrue, cafev1alpha1.IAMReasonProjected,
			fmt.Sprintf("RoleBindings %s grant ClusterRole %s in %d namespaces", iam.BindingName(b.Name), iam.ClusterRoleName(b.Spec.Role), len(namespaces)))
	}
	return nil
}

// applyWorkers bounds the RoleBindings one reconcile writes at once: a
// binding over a hundred namespaces is written in the time of a few round
// trips, within the client's rate limit.
const applyWorkers = 8

// applyRoleBindings writes the binding's RoleBinding in each namespace,
// several at once.
func (r *BindingReconciler) applyRoleBindings(ctx context.Context, b *cafev1alpha1.IAMRoleBinding, namespaces []string) error {
	var w writebatch.Batch
	for _, ns := range namespaces {
		w.Add(func() error { return applyOwned(ctx, r.Client, r.Scheme, b, iam.RoleBinding(b, ns)) })
	}
	return w.Run(applyWorkers)
}

// namespacesInScope are the existing namespaces the scope names or
// selects, sorted; terminating ones are left out.
func (r *BindingReconciler) namespacesInScope(ctx context.Context, scope cafev1alpha1.IAMScope) ([]string, error) {
	list := &corev1.NamespaceList{}
	opts := []client.ListOption{}
	if scope.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(scope.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("spec.scope.namespaceSelector: %w", err)
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	var out []string
	for _, ns := range list.Items {
		if ns.Status.Phase == corev1.NamespaceTerminating {
			continue
		}
		if scope.NamespaceSelector != nil || slices.Contains(scope.Namespaces, ns.Name) {
			out = append(out, ns.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// prune deletes the binding's RoleBindings outside keep, and its
// ClusterRoleBinding unless keepCluster.
func (r *BindingReconciler) prune(ctx context.Context, b *cafev1alpha1.IAMRoleBinding, keep []string, keepCluster bool) error {
	return r.deleteProjections(ctx, b.Name, func(obj metav1.Object) bool { return metav1.IsControlledBy(obj, b) }, keep, keepCluster)
}

// pruneDeleted revokes at once what a deleted binding granted, rather than
// leaving it to the garbage collector, whose delay has no bound CAFE can
// state (it learns a new kind only at its next discovery and lags under
// load). The cache may not have seen a binding of the same name created
// since: the API server says which binding object, if any, has the name,
// and only the projections of another one go.
func (r *BindingReconciler) pruneDeleted(ctx context.Context, name string) error {
	var current types.UID
	live := &cafev1alpha1.IAMRoleBinding{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, live); {
	case err == nil:
		current = live.UID
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading IAMRoleBinding %s: %w", name, err)
	}
	orphaned := func(obj metav1.Object) bool {
		ref := metav1.GetControllerOf(obj)
		return ref != nil && ref.APIVersion == cafev1alpha1.GroupVersion.String() && ref.Kind == "IAMRoleBinding" && ref.Name == name && ref.UID != current
	}
	return r.deleteProjections(ctx, name, orphaned, nil, false)
}

// deleteProjections deletes the RoleBindings (outside keep) and, unless
// keepCluster, the ClusterRoleBinding labelled as projected from the
// binding name for which owned holds; each delete is conditional on the
// object read.
func (r *BindingReconciler) deleteProjections(ctx context.Context, name string, owned func(metav1.Object) bool, keep []string, keepCluster bool) error {
	rbs := &rbacv1.RoleBindingList{}
	if err := r.Client.List(ctx, rbs, client.MatchingLabels{cafev1alpha1.IAMBindingLabel: name}); err != nil {
		return fmt.Errorf("listing the RoleBindings of IAMRoleBinding %s: %w", name, err)
	}
	var w writebatch.Batch
	remove := func(obj client.Object) {
		w.Add(func() error {
			return client.IgnoreNotFound(r.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}))
		})
	}
	for i := range rbs.Items {
		if rb := &rbs.Items[i]; !slices.Contains(keep, rb.Namespace) && owned(rb) {
			remove(rb)
		}
	}
	if !keepCluster {
		crb := &rbacv1.ClusterRoleBinding{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: iam.BindingName(name)}, crb); err == nil && owned(crb) {
			remove(crb)
		}
	}
	if err := w.Run(applyWorkers); err != nil {
		return fmt.Errorf("deleting the RBAC bindings of IAMRoleBinding %s: %w", name, err)
	}
	return nil
}

func (r *BindingReconciler) notReady(b *cafev1alpha1.IAMRoleBinding, reason, msg string) {
	if !meta.IsStatusConditionPresentAndEqual(b.Status.Conditions, cafev1alpha1.IAMReadyCondition, metav1.ConditionFalse) {
		r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, reason, "Project", "%s", msg)
	}
	setReady(&b.Status.Conditions, b.Generation, metav1.ConditionFalse, reason, msg)
}
