package iam_test

// Admission on a real kube-apiserver calling CAFE's webhooks, as users the
// API server authenticates by client certificate (envtest's AddUser).

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

var suite framework.WebhookSuite

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

// user is a user the API server authenticates, allowed to write IAM
// objects and granted the RBAC verbs given on clusterroles.
func user(t *testing.T, g Gomega, name string, rbacVerbs ...string) client.Client {
	t.Helper()
	ctx := context.Background()
	u, err := suite.Env.AddUser(envtest.User{Name: name}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	rules := []rbacv1.PolicyRule{{APIGroups: []string{"cafe.io"}, Resources: []string{"iamroles", "iamrolebindings"}, Verbs: []string{"get", "list", "create", "update"}}}
	if len(rbacVerbs) > 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: rbacVerbs})
	}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "iam-writer-" + name}, Rules: rules}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "iam-writer-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
	}
	g.Expect(suite.Admin.Create(ctx, cr)).To(Succeed())
	g.Expect(suite.Admin.Create(ctx, crb)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(ctx, crb); _ = suite.Admin.Delete(ctx, cr) })
	c, err := client.New(u.Config(), client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

func iamRole(name string, spec cafev1alpha1.IAMRoleSpec) *cafev1alpha1.IAMRole {
	return &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

var viewSpec = cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermReleasesView}}

func createAsAdmin(t *testing.T, g Gomega, obj client.Object) {
	t.Helper()
	g.Expect(suite.Admin.Create(context.Background(), obj)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(context.Background(), obj) })
}

// Defining a role takes what Kubernetes asks of whoever defines a
// ClusterRole: the verb escalate on clusterroles. Includes must exist and
// not cycle; rule verbs must be ones something checks.
func TestIAMRolesAreAdmittedOnlyFromWritersWhoMayEscalateAndWithoutCycles(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	lead := user(t, g, "team-lead")
	err := lead.Create(ctx, iamRole("lead-role", viewSpec))
	g.Expect(err).To(MatchError(ContainSubstring(`team-lead may not define an IAMRole (it becomes a ClusterRole): RBAC grants no verb "escalate" on clusterroles.rbac.authorization.k8s.io`)))

	platform := user(t, g, "platform", "escalate")
	viewer := iamRole("viewer", viewSpec)
	g.Expect(platform.Create(ctx, viewer)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(ctx, viewer) })

	g.Expect(platform.Create(ctx, iamRole("lead", cafev1alpha1.IAMRoleSpec{Includes: []string{"viewer", "nobody"}}))).
		To(MatchError(ContainSubstring(`spec.includes[1]: Not found: IAMRole "nobody" does not exist`)))
	g.Expect(platform.Create(ctx, iamRole("typo", cafev1alpha1.IAMRoleSpec{Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"cafe.io"}, Resources: []string{"releaseorders"}, Verbs: []string{"get", "aprove"}},
	}}))).To(MatchError(ContainSubstring(`spec.rules[0].verbs[1]: Unsupported value: "aprove"`)))

	approver := iamRole("approver", cafev1alpha1.IAMRoleSpec{Includes: []string{"viewer"}})
	g.Expect(platform.Create(ctx, approver)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(ctx, approver) })
	// viewer including approver would close viewer → approver → viewer.
	err = framework.Update(ctx, platform, &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: "viewer"}}, func(r *cafev1alpha1.IAMRole) {
		r.Spec.Includes = []string{"approver"}
	})
	g.Expect(err).To(MatchError(ContainSubstring("spec.includes: Invalid value: roles include each other in a cycle: viewer → approver → viewer")))
	g.Expect(platform.Create(ctx, iamRole("self", cafev1alpha1.IAMRoleSpec{Includes: []string{"self"}}))).
		To(MatchError(ContainSubstring("cycle: self → self")))
}

// Granting a role takes the verb bind on clusterroles; the role must exist
// and the scope select something today.
func TestIAMRoleBindingsNeedBindAnExistingRoleAndAScopeThatSelects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	createAsAdmin(t, g, iamRole("auditor", cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAuditRead}}))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments", Labels: map[string]string{"team": "payments"}}}
	createAsAdmin(t, g, ns)
	binding := func(role string, scope cafev1alpha1.IAMScope) *cafev1alpha1.IAMRoleBinding {
		return &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "b-"}, Spec: cafev1alpha1.IAMRoleBindingSpec{
			Role: role, Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "auditors"}}, Scope: scope,
		}}
	}
	inPayments := cafev1alpha1.IAMScope{Namespaces: []string{"payments"}}

	g.Expect(user(t, g, "no-bind", "escalate").Create(ctx, binding("auditor", inPayments))).
		To(MatchError(ContainSubstring(`no-bind may not grant an IAMRole (it becomes a binding): RBAC grants no verb "bind" on clusterroles.rbac.authorization.k8s.io`)))
	granter := user(t, g, "granter", "bind")
	g.Expect(granter.Create(ctx, binding("ghost", inPayments))).To(MatchError(ContainSubstring(`spec.role: Not found: IAMRole "ghost" does not exist`)))
	g.Expect(granter.Create(ctx, binding("auditor", cafev1alpha1.IAMScope{Namespaces: []string{"payments", "paymnets"}}))).
		To(MatchError(ContainSubstring("spec.scope.namespaces: Not found: paymnets")))
	g.Expect(granter.Create(ctx, binding("auditor", cafev1alpha1.IAMScope{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "paymnets"}}}))).
		To(MatchError(ContainSubstring(`spec.scope.namespaceSelector: Invalid value: "team=paymnets" selects no namespace`)))

	ok := binding("auditor", cafev1alpha1.IAMScope{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}})
	g.Expect(granter.Create(ctx, ok)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(ctx, ok) })
	cluster := binding("auditor", cafev1alpha1.IAMScope{Cluster: true})
	g.Expect(granter.Create(ctx, cluster)).To(Succeed(), "cluster scope always selects")
	t.Cleanup(func() { _ = suite.Admin.Delete(ctx, cluster) })
}
