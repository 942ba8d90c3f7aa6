// Package iam holds the admission webhooks of IAMRoles and
// IAMRoleBindings: what the schema cannot judge because it needs other
// objects (an included or bound role that does not exist, a cycle of
// includes, a scope that selects no namespace), and who may write them at
// all. An IAMRole becomes a ClusterRole and an IAMRoleBinding a binding that
// CAFE writes with its own rights, so CAFE asks the API server's authorizer
// what Kubernetes itself would ask of the requester: the verb escalate on
// clusterroles to define a role, bind to grant one. Nobody gets through
// CAFE a right RBAC would not let them give.
package iam

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/iam"
)

// Paths the validators are served at.
const (
	RolePath    = "/validate-cafe-io-v1alpha1-iamrole"
	BindingPath = "/validate-cafe-io-v1alpha1-iamrolebinding"
)

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// RoleValidator refuses IAMRoles that include a role that does not exist or
// close a cycle, and writers RBAC does not let define roles.
type RoleValidator struct {
	// Reader reads IAMRoles from the API server (no cache: a role created
	// a moment ago may be included at once).
	Reader client.Reader
	// Client asks the authorizer (SubjectAccessReviews).
	Client client.Client
}

// Handle implements admission.Handler.
func (v RoleValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	r := &cafev1alpha1.IAMRole{}
	if err := admit.Decode(req.Object, r, "IAMRole"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if resp, ok := mayRBAC(ctx, v.Client, req.UserInfo, "escalate", "clusterroles", "define an IAMRole (it becomes a ClusterRole)"); !ok {
		return resp
	}
	if err := knownVerbs(r.Spec.Rules); err != nil {
		return admission.Denied(err.Error())
	}
	list := &cafev1alpha1.IAMRoleList{}
	if err := v.Reader.List(ctx, list); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("listing IAMRoles: %w", err))
	}
	roles := map[string]*cafev1alpha1.IAMRole{}
	for i := range list.Items {
		roles[list.Items[i].Name] = &list.Items[i]
	}
	for i, inc := range r.Spec.Includes {
		if _, ok := roles[inc]; !ok && inc != r.Name {
			return admission.Denied(fmt.Sprintf("spec.includes[%d]: Not found: IAMRole %q does not exist", i, inc))
		}
	}
	if err := iam.CycleThrough(r.Name, r.Spec, roles); err != nil {
		return admission.Denied("spec.includes: Invalid value: " + err.Error())
	}
	return admission.Allowed("")
}

// verbs are the verbs a rule may name: Kubernetes' own (those of its API
// and of RBAC, certificates and pod security) and CAFE's release verbs.
// RBAC itself takes any string, so a typo would grant nothing, silently.
var verbs = []string{"*", "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy",
	"impersonate", "bind", "escalate", "use", "approve", "sign", "attest",
	"reject", "start", "pause", "resume", "confirm", "cancel", "rollback", "purge"}

// knownVerbs refuses a rule naming a verb nobody checks.
func knownVerbs(rules []rbacv1.PolicyRule) error {
	for i, r := range rules {
		for j, v := range r.Verbs {
			if !slices.Contains(verbs, v) {
				return fmt.Errorf("spec.rules[%d].verbs[%d]: Unsupported value: %q: supported values: %s", i, j, v, strings.Join(verbs, ", "))
			}
		}
	}
	return nil
}

// mayRBAC asks whether the requester may verb the RBAC resource
// cluster-wide; ok false comes with the response that refuses them.
func mayRBAC(ctx context.Context, c client.Client, user authenticationv1.UserInfo, verb, resource, what string) (admission.Response, bool) {
	allowed, reason, err := admit.MayUser(ctx, c, user, authorizationv1.ResourceAttributes{Group: "rbac.authorization.k8s.io", Resource: resource, Verb: verb})
	switch {
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, err), false
	case !allowed:
		msg := fmt.Sprintf("%s may not %s: RBAC grants no verb %q on %s.rbac.authorization.k8s.io", user.Username, what, verb, resource)
		if reason != "" {
			msg += " (" + reason + ")"
		}
		return admission.Denied(msg), false
	}
	return admission.Response{}, true
}

// BindingValidator refuses IAMRoleBindings to roles that do not exist,
// scopes that select no namespace, and writers RBAC does not let grant
// roles.
type BindingValidator struct {
	// Reader reads IAMRoles and namespaces from the API server.
	Reader client.Reader
	// Client asks the authorizer (SubjectAccessReviews).
	Client client.Client
}

// Handle implements admission.Handler.
func (v BindingValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	b := &cafev1alpha1.IAMRoleBinding{}
	if err := admit.Decode(req.Object, b, "IAMRoleBinding"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if resp, ok := mayRBAC(ctx, v.Client, req.UserInfo, "bind", "clusterroles", "grant an IAMRole (it becomes a binding)"); !ok {
		return resp
	}
	err := v.Reader.Get(ctx, client.ObjectKey{Name: b.Spec.Role}, &cafev1alpha1.IAMRole{})
	switch {
	case apierrors.IsNotFound(err):
		return admission.Denied(fmt.Sprintf("spec.role: Not found: IAMRole %q does not exist", b.Spec.Role))
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading IAMRole %s: %w", b.Spec.Role, err))
	}
	if err := v.scopeSelectsSomething(ctx, b.Spec.Scope); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}

// scopeSelectsSomething refuses listed namespaces that do not exist and a
// selector that matches none today (a typo would grant nothing, silently).
func (v BindingValidator) scopeSelectsSomething(ctx context.Context, scope cafev1alpha1.IAMScope) error {
	var missing []string
	for _, ns := range scope.Namespaces {
		err := v.Reader.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, ns)
		case err != nil:
			return fmt.Errorf("reading namespace %s: %w", ns, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("spec.scope.namespaces: Not found: %s do(es) not exist", strings.Join(missing, ", "))
	}
	if scope.NamespaceSelector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(scope.NamespaceSelector)
	if err != nil {
		return fmt.Errorf("spec.scope.namespaceSelector: Invalid value: %w", err)
	}
	list := &corev1.NamespaceList{}
	if err := v.Reader.List(ctx, list, client.MatchingLabelsSelector{Selector: sel}, client.Limit(1)); err != nil {
		return fmt.Errorf("listing namespaces: %w", err)
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("spec.scope.namespaceSelector: Invalid value: %q selects no namespace", sel.String())
	}
	return nil
}
