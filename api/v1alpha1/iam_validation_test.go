package v1alpha1_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func validIAMRole(name string) *cafev1alpha1.IAMRole {
	return &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.IAMRoleSpec{
		Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermReleasesView},
	}}
}

func validIAMRoleBinding(name string) *cafev1alpha1.IAMRoleBinding {
	return &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.IAMRoleBindingSpec{
		Role:     "viewer",
		Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "auditors"}},
		Scope:    cafev1alpha1.IAMScope{Namespaces: []string{"pay"}},
	}}
}

// IAM objects the schema can judge are refused by the API server, naming
// the field.
func TestIAMObjectsAreValidatedByTheirSchema(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	create(t, g, validIAMRole("valid-role"))
	create(t, g, validIAMRoleBinding("valid-binding"))

	roleCases := []struct {
		name   string
		mutate func(*cafev1alpha1.IAMRole)
		field  string
	}{
		{"an unknown permission", func(r *cafev1alpha1.IAMRole) { r.Spec.Permissions = []cafev1alpha1.IAMPermission{"releases.launch"} }, "spec.permissions[0]"},
		{"a role granting nothing", func(r *cafev1alpha1.IAMRole) { r.Spec = cafev1alpha1.IAMRoleSpec{DisplayName: "empty"} }, "a role needs permissions, rules or includes"},
		{"a rule without verbs", func(r *cafev1alpha1.IAMRole) {
			r.Spec.Rules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}
		}, "spec.rules[0].verbs"},
		{"a rule on resources and URLs at once", func(r *cafev1alpha1.IAMRole) {
			r.Spec.Rules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, NonResourceURLs: []string{"/healthz"}, Verbs: []string{"get"}}}
		}, "either nonResourceURLs, or apiGroups and resources"},
		{"a name too long to label its ClusterRole", func(r *cafev1alpha1.IAMRole) { r.Name = strings.Repeat("r", 64) }, "metadata.name: at most 63"},
	}
	for _, tc := range roleCases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := validIAMRole("bad-role")
			tc.mutate(r)
			expectInvalid(g, tryCreate(r), tc.field)
		})
	}
	bindingCases := []struct {
		name   string
		mutate func(*cafev1alpha1.IAMRoleBinding)
		field  string
	}{
		{"no scope", func(b *cafev1alpha1.IAMRoleBinding) { b.Spec.Scope = cafev1alpha1.IAMScope{} }, "scope: exactly one of cluster, namespaces or namespaceSelector"},
		{"two scopes", func(b *cafev1alpha1.IAMRoleBinding) { b.Spec.Scope.Cluster = true }, "scope: exactly one of cluster, namespaces or namespaceSelector"},
		{"an unknown subject kind", func(b *cafev1alpha1.IAMRoleBinding) { b.Spec.Subjects[0].Kind = "ServiceAccount" }, "spec.subjects[0].kind"},
		{"a subject name with a colon", func(b *cafev1alpha1.IAMRoleBinding) { b.Spec.Subjects[0].Name = "system:masters" }, "spec.subjects[0].name"},
		{"no subject", func(b *cafev1alpha1.IAMRoleBinding) { b.Spec.Subjects = nil }, "spec.subjects"},
		{"no role", func(b *cafev1alpha1.IAMRoleBinding) { b.Spec.Role = "" }, "spec.role"},
	}
	for _, tc := range bindingCases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			b := validIAMRoleBinding("bad-binding")
			tc.mutate(b)
			expectInvalid(g, tryCreate(b), tc.field)
		})
	}
}
