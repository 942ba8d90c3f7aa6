package iam_test

import (
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/iam"
)

func roles(rs ...*cafev1alpha1.IAMRole) map[string]*cafev1alpha1.IAMRole {
	out := map[string]*cafev1alpha1.IAMRole{}
	for _, r := range rs {
		out[r.Name] = r
	}
	return out
}

func role(name string, spec cafev1alpha1.IAMRoleSpec) *cafev1alpha1.IAMRole {
	return &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func TestEveryPermissionGrantsSomething(t *testing.T) {
	g := NewWithT(t)
	g.Expect(iam.Permissions()).To(HaveLen(9))
	for _, p := range iam.Permissions() {
		g.Expect(iam.PermissionRules(p)).NotTo(BeEmpty(), string(p))
	}
	g.Expect(iam.PermissionRules("nope")).To(BeEmpty())
}

func TestExpandUnitesIncludedRolesOnceAndMergesVerbs(t *testing.T) {
	g := NewWithT(t)
	all := roles(
		role("viewer", cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermReleasesView}}),
		role("approver", cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermReleasesApprove}, Includes: []string{"viewer"}}),
		role("lead", cafev1alpha1.IAMRoleSpec{Includes: []string{"approver", "viewer"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"cafe.io"}, Resources: []string{"releaseorders"}, Verbs: []string{"start", "get"}},
		}}),
	)
	rules, err := iam.Expand("lead", all)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules).To(ContainElement(rbacv1.PolicyRule{APIGroups: []string{"cafe.io"}, Resources: []string{"releaseorders"},
		Verbs: []string{"approve", "get", "list", "reject", "start", "watch"}}), "one rule per target, its verbs united")
	again, _ := iam.Expand("lead", all)
	g.Expect(again).To(Equal(rules), "deterministic")
}

func TestExpandNamesCyclesAndMissingRoles(t *testing.T) {
	g := NewWithT(t)
	all := roles(
		role("a", cafev1alpha1.IAMRoleSpec{Includes: []string{"b"}}),
		role("b", cafev1alpha1.IAMRoleSpec{Includes: []string{"c"}}),
		role("c", cafev1alpha1.IAMRoleSpec{Includes: []string{"a"}}),
		role("d", cafev1alpha1.IAMRoleSpec{Includes: []string{"zz"}}),
	)
	_, err := iam.Expand("a", all)
	g.Expect(err).To(MatchError(iam.ErrCycle))
	g.Expect(err).To(MatchError(ContainSubstring("a → b → c → a")))
	_, err = iam.Expand("d", all)
	g.Expect(err).To(MatchError(iam.ErrMissingRole))
	g.Expect(err).To(MatchError(ContainSubstring("d includes zz")))

	// Admission: the update of c that would close the cycle is named; one
	// that does not is not.
	delete(all, "c")
	g.Expect(iam.CycleThrough("c", cafev1alpha1.IAMRoleSpec{Includes: []string{"a"}}, all)).To(MatchError(ContainSubstring("c → a → b → c")))
	g.Expect(iam.CycleThrough("c", cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsView}}, all)).To(Succeed())
}

func TestBindingsNameTheDirectorysGroupsUnderItsPrefix(t *testing.T) {
	g := NewWithT(t)
	b := &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pay-devs"}, Spec: cafev1alpha1.IAMRoleBindingSpec{
		Role: "developer", Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "system:masters"}, {Kind: cafev1alpha1.IAMSubjectUser, Name: "alice"}},
	}}
	rb := iam.RoleBinding(b, "pay")
	g.Expect(rb.Subjects).To(Equal([]rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "dir:system:masters"},
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dir:alice"},
	}), "a directory group can never be a Kubernetes system group")
	g.Expect(rb.RoleRef.Name).To(Equal("cafe-iam:developer"))
	g.Expect(rb.Name).To(Equal("cafe-iam:pay-devs"))
}

// A change to a role reaches every role that depends on it, through
// includes of includes; a cycle ends the walk.
func TestIncludersAreTransitive(t *testing.T) {
	g := NewWithT(t)
	list := []cafev1alpha1.IAMRole{
		*role("base", cafev1alpha1.IAMRoleSpec{}),
		*role("mid", cafev1alpha1.IAMRoleSpec{Includes: []string{"base"}}),
		*role("top", cafev1alpha1.IAMRoleSpec{Includes: []string{"mid"}}),
		*role("other", cafev1alpha1.IAMRoleSpec{}),
		*role("loop-a", cafev1alpha1.IAMRoleSpec{Includes: []string{"loop-b", "base"}}),
		*role("loop-b", cafev1alpha1.IAMRoleSpec{Includes: []string{"loop-a"}}),
	}
	g.Expect(iam.Includers("base", list)).To(Equal([]string{"loop-a", "loop-b", "mid", "top"}))
	g.Expect(iam.Includers("other", list)).To(BeEmpty())
}
