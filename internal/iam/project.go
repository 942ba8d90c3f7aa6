package iam

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// ClusterRoleName is the ClusterRole CAFE keeps for IAMRole role.
func ClusterRoleName(role string) string { return cafev1alpha1.IAMRBACPrefix + role }

// BindingName is the name of the bindings CAFE keeps for IAMRoleBinding b.
func BindingName(b string) string { return cafev1alpha1.IAMRBACPrefix + b }

// roleLabels and bindingLabels mark what an IAMRole and an IAMRoleBinding
// project.
func roleLabels(role string) map[string]string {
	return map[string]string{cafev1alpha1.IAMManagedLabel: cafev1alpha1.IAMManagedValue, cafev1alpha1.IAMRoleLabel: role}
}

func bindingLabels(binding string) map[string]string {
	return map[string]string{cafev1alpha1.IAMManagedLabel: cafev1alpha1.IAMManagedValue, cafev1alpha1.IAMBindingLabel: binding}
}

// ClusterRole is the ClusterRole of role with its effective rules.
func ClusterRole(role *cafev1alpha1.IAMRole, rules []rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   ClusterRoleName(role.Name),
			Labels: roleLabels(role.Name),
		},
		Rules: rules,
	}
}

// Subjects are the binding's Kubernetes subjects: the directory's groups
// and users under DirectoryPrefix, as CAFE's credentials name them.
func Subjects(b *cafev1alpha1.IAMRoleBinding) []rbacv1.Subject {
	out := make([]rbacv1.Subject, 0, len(b.Spec.Subjects))
	for _, s := range b.Spec.Subjects {
		kind := rbacv1.GroupKind
		if s.Kind == cafev1alpha1.IAMSubjectUser {
			kind = rbacv1.UserKind
		}
		out = append(out, rbacv1.Subject{Kind: kind, APIGroup: rbacv1.GroupName, Name: cafev1alpha1.DirectoryPrefix + s.Name})
	}
	return out
}

// roleRef is the ClusterRole of the binding's role.
func roleRef(b *cafev1alpha1.IAMRoleBinding) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRoleName(b.Spec.Role)}
}

// ClusterRoleBinding is the binding of a cluster-scoped IAMRoleBinding.
func ClusterRoleBinding(b *cafev1alpha1.IAMRoleBinding) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: BindingName(b.Name), Labels: bindingLabels(b.Name)},
		RoleRef:    roleRef(b),
		Subjects:   Subjects(b),
	}
}

// RoleBinding is the binding of IAMRoleBinding b in namespace ns.
func RoleBinding(b *cafev1alpha1.IAMRoleBinding, ns string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: BindingName(b.Name), Labels: bindingLabels(b.Name)},
		RoleRef:    roleRef(b),
		Subjects:   Subjects(b),
	}
}
