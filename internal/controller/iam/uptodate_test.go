package iam

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// An RBAC object is left alone only when it already has the projection's
// controller, labels and content; any difference (a hand edit) is applied
// over.
func TestUpToDateOnlyWhenNothingWouldChange(t *testing.T) {
	controller := func(uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "cafe.io/v1alpha1", Kind: "IAMRoleBinding", Name: "b", UID: uid, Controller: new(true)}}
	}
	desired := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cafe-iam:b", Labels: map[string]string{"iam.cafe.io/binding": "b"}, OwnerReferences: controller("u1")},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-iam:r"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "dir:app-dev"}},
	}
	same := desired.DeepCopy()
	same.Labels["added-by-someone"] = "x"
	if !upToDate(same, desired) {
		t.Error("an identical binding (an extra label aside) is up to date")
	}
	for name, edit := range map[string]func(*rbacv1.RoleBinding){
		"a subject added": func(rb *rbacv1.RoleBinding) {
			rb.Subjects = append(rb.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, Name: "mallory"})
		},
		"the role swapped":     func(rb *rbacv1.RoleBinding) { rb.RoleRef.Name = "cluster-admin" },
		"a label changed":      func(rb *rbacv1.RoleBinding) { rb.Labels["iam.cafe.io/binding"] = "other" },
		"another controller":   func(rb *rbacv1.RoleBinding) { rb.OwnerReferences = controller("u2") },
		"no controller":        func(rb *rbacv1.RoleBinding) { rb.OwnerReferences = nil },
		"being deleted":        func(rb *rbacv1.RoleBinding) { rb.DeletionTimestamp = new(metav1.Now()) },
		"the subjects removed": func(rb *rbacv1.RoleBinding) { rb.Subjects = nil },
	} {
		got := desired.DeepCopy()
		edit(got)
		if upToDate(got, desired) {
			t.Errorf("%s: not up to date", name)
		}
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cafe-iam:r", OwnerReferences: controller("u3")},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"cafe.io"}, Resources: []string{"releaseorders"}, Verbs: []string{"get"}}}}
	edited := role.DeepCopy()
	edited.Rules[0].Verbs = append(edited.Rules[0].Verbs, "delete")
	if !upToDate(role.DeepCopy(), role) || upToDate(edited, role) {
		t.Error("a ClusterRole is up to date exactly when its rules are the projection's")
	}
}
