package iam_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/iam"
	"github.com/cafe-io/cafe/test/framework"
)

func role(name string, spec cafev1alpha1.IAMRoleSpec) *cafev1alpha1.IAMRole {
	return &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func create(ctx context.Context, g *WithT, t *testing.T, obj client.Object) {
	t.Helper()
	g.Expect(suite.Client.Create(ctx, obj)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), obj) })
}

func clusterRole(ctx context.Context, g Gomega, name string) *rbacv1.ClusterRole {
	cr := &rbacv1.ClusterRole{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: iam.ClusterRoleName(name)}, cr)).To(Succeed())
	return cr
}

func ready(ctx context.Context, g Gomega, obj client.Object, conds func() []metav1.Condition) *metav1.Condition {
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return meta.FindStatusCondition(conds(), cafev1alpha1.IAMReadyCondition)
}

// can asks the API server's own authorizer whether a directory user in
// the directory's groups may do verb on resource in ns.
func can(ctx context.Context, g Gomega, user string, groups []string, verb, resource, ns string) bool {
	var kgroups []string
	for _, grp := range groups {
		kgroups = append(kgroups, cafev1alpha1.DirectoryPrefix+grp)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: cafev1alpha1.DirectoryPrefix + user, Groups: kgroups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: "cafe.io", Resource: resource},
	}}
	g.Expect(suite.Client.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

// A role written in CAFE's permissions, its own rules and an included
// role becomes one ClusterRole with the union, merged; a change to the
// included role reaches it; a hand edit and a deletion are undone.
func TestAnIAMRoleBecomesOneClusterRoleKeptAsItsSpecSays(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	base, dev := ns+"-viewer", ns+"-developer"
	create(ctx, g, t, role(base, cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsView}}))
	create(ctx, g, t, role(dev, cafev1alpha1.IAMRoleSpec{
		DisplayName: "Application developer",
		Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsEdit, cafev1alpha1.PermReleasesRequest},
		Rules:       []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
		Includes:    []string{base},
	}))
	want := func() []rbacv1.PolicyRule {
		roles := &cafev1alpha1.IAMRoleList{}
		g.Expect(suite.Client.List(ctx, roles)).To(Succeed())
		byName := map[string]*cafev1alpha1.IAMRole{}
		for i := range roles.Items {
			byName[roles.Items[i].Name] = &roles.Items[i]
		}
		rules, err := iam.Expand(dev, byName)
		g.Expect(err).NotTo(HaveOccurred())
		return rules
	}
	g.Eventually(func(g Gomega) {
		cr := clusterRole(ctx, g, dev)
		g.Expect(cr.Rules).To(Equal(want()))
		g.Expect(cr.Labels).To(HaveKeyWithValue(cafev1alpha1.IAMRoleLabel, dev))
		g.Expect(cr.Rules).To(ContainElement(rbacv1.PolicyRule{APIGroups: []string{"cafe.io"}, Resources: []string{"apprevisions", "cafeappservices", "cafedeployments"}, Verbs: []string{"get", "list", "watch"}}), "apps.view, from the included role")
		r := &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: dev}}
		c := ready(ctx, g, r, func() []metav1.Condition { return r.Status.Conditions })
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(r.Status.ClusterRole).To(Equal(iam.ClusterRoleName(dev)))
		g.Expect(r.Status.RuleCount).To(BeEquivalentTo(len(cr.Rules)))
	}).Should(Succeed())

	// The included role changes: the includer's ClusterRole follows.
	g.Expect(framework.Update(ctx, suite.Client, &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: base}}, func(r *cafev1alpha1.IAMRole) {
		r.Spec.Permissions = append(r.Spec.Permissions, cafev1alpha1.PermAuditRead)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(clusterRole(ctx, g, dev).Rules).To(ContainElement(HaveField("ResourceNames", []string{"cafe-audit-public-key"})))
	}).Should(Succeed())

	// A hand edit is undone; so is a deletion.
	cr := clusterRole(ctx, g, dev)
	cr.Rules = append(cr.Rules, rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}})
	g.Expect(suite.Client.Update(ctx, cr)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(clusterRole(ctx, g, dev).Rules).To(Equal(want())) }).Should(Succeed())
	g.Expect(suite.Client.Delete(ctx, clusterRole(ctx, g, dev))).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(clusterRole(ctx, g, dev).Rules).To(Equal(want())) }).Should(Succeed())
}

// Roles that include each other, or a role that does not exist, are named
// in the role's Ready condition and project nothing.
func TestARoleInACycleOrIncludingAMissingRoleSaysWhy(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	a, b := ns+"-a", ns+"-b"
	create(ctx, g, t, role(a, cafev1alpha1.IAMRoleSpec{Includes: []string{b}}))
	g.Eventually(func(g Gomega) {
		r := &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: a}}
		c := ready(ctx, g, r, func() []metav1.Condition { return r.Status.Conditions })
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.IAMReasonRoleNotFound))
		g.Expect(c.Message).To(Equal("spec.includes: an included role does not exist: " + a + " includes " + b))
	}).Should(Succeed())
	create(ctx, g, t, role(b, cafev1alpha1.IAMRoleSpec{Includes: []string{a}}))
	g.Eventually(func(g Gomega) {
		r := &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: a}}
		c := ready(ctx, g, r, func() []metav1.Condition { return r.Status.Conditions })
		g.Expect(c.Reason).To(Equal(cafev1alpha1.IAMReasonIncludeCycle))
		g.Expect(c.Message).To(ContainSubstring(a + " → " + b + " → " + a))
	}).Should(Succeed())
	err := suite.Client.Get(ctx, client.ObjectKey{Name: iam.ClusterRoleName(a)}, &rbacv1.ClusterRole{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing projected")
}

// A binding to a team's namespaces by label: one RoleBinding per
// namespace, naming the directory group, never its members; a namespace
// labelled later gets one, one unlabelled loses it; the API server's
// authorizer then answers for the group's members exactly so.
func TestABindingGrantsItsRoleToGroupsInTheNamespacesItSelects(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	team := ns + "-team"
	pay1, pay2, other := framework.CreateNamespace(t, suite.Client), framework.CreateNamespace(t, suite.Client), framework.CreateNamespace(t, suite.Client)
	label := func(name string, on bool) {
		g.Expect(framework.Update(ctx, suite.Client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, func(n *corev1.Namespace) {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			if on {
				n.Labels["team"] = team
			} else {
				delete(n.Labels, "team")
			}
		})).To(Succeed())
	}
	label(pay1, true)
	label(pay2, true)
	dev := ns + "-dev"
	create(ctx, g, t, role(dev, cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsEdit, cafev1alpha1.PermReleasesRequest}}))
	b := &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-app-dev"}, Spec: cafev1alpha1.IAMRoleBindingSpec{
		Role:     dev,
		Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "app-dev"}},
		Scope:    cafev1alpha1.IAMScope{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": team}}},
	}}
	create(ctx, g, t, b)
	bindingsIn := func(g Gomega) map[string][]rbacv1.Subject {
		list := &rbacv1.RoleBindingList{}
		g.Expect(suite.Client.List(ctx, list, client.MatchingLabels{cafev1alpha1.IAMBindingLabel: b.Name})).To(Succeed())
		out := map[string][]rbacv1.Subject{}
		for _, rb := range list.Items {
			g.Expect(rb.RoleRef.Name).To(Equal(iam.ClusterRoleName(dev)))
			out[rb.Namespace] = rb.Subjects
		}
		return out
	}
	group := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "dir:app-dev"}}
	g.Eventually(func(g Gomega) {
		g.Expect(bindingsIn(g)).To(Equal(map[string][]rbacv1.Subject{pay1: group, pay2: group}))
		got := &cafev1alpha1.IAMRoleBinding{ObjectMeta: b.ObjectMeta}
		c := ready(ctx, g, got, func() []metav1.Condition { return got.Status.Conditions })
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(got.Status.NamespaceCount).To(BeEquivalentTo(2))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(can(ctx, g, "alice", []string{"app-dev"}, "create", "releaseorders", pay1)).To(BeTrue())
	}).Should(Succeed())
	g.Expect(can(ctx, g, "alice", []string{"app-dev"}, "approve", "releaseorders", pay1)).To(BeFalse(), "not in the role")
	g.Expect(can(ctx, g, "alice", []string{"app-dev"}, "create", "releaseorders", other)).To(BeFalse(), "not in scope")
	g.Expect(can(ctx, g, "mallory", []string{"auditors"}, "create", "releaseorders", pay1)).To(BeFalse(), "not in the group")

	label(other, true)
	label(pay2, false)
	g.Eventually(func(g Gomega) {
		g.Expect(bindingsIn(g)).To(Equal(map[string][]rbacv1.Subject{pay1: group, other: group}))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(can(ctx, g, "alice", []string{"app-dev"}, "create", "releaseorders", pay2)).To(BeFalse())
	}).Should(Succeed())

	// A hand-deleted RoleBinding comes back.
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: pay1, Name: iam.BindingName(b.Name)}}
	g.Expect(suite.Client.Delete(ctx, rb)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(bindingsIn(g)).To(HaveKey(pay1)) }).Should(Succeed())
}

// A binding to a role that does not exist grants nothing and says so, until
// the role exists; a cluster-wide binding is one ClusterRoleBinding, gone
// when the scope narrows to namespaces.
func TestABindingWaitsForItsRoleAndFollowsItsScope(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	r := ns + "-auditor"
	b := &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-auditors"}, Spec: cafev1alpha1.IAMRoleBindingSpec{
		Role:     r,
		Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "auditors"}, {Kind: cafev1alpha1.IAMSubjectUser, Name: "carol"}},
		Scope:    cafev1alpha1.IAMScope{Cluster: true},
	}}
	create(ctx, g, t, b)
	g.Eventually(func(g Gomega) {
		got := &cafev1alpha1.IAMRoleBinding{ObjectMeta: b.ObjectMeta}
		c := ready(ctx, g, got, func() []metav1.Condition { return got.Status.Conditions })
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.IAMReasonRoleNotFound))
	}).Should(Succeed())
	crb := &rbacv1.ClusterRoleBinding{}
	g.Expect(apierrors.IsNotFound(suite.Client.Get(ctx, client.ObjectKey{Name: iam.BindingName(b.Name)}, crb))).To(BeTrue())

	create(ctx, g, t, role(r, cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAuditRead}}))
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: iam.BindingName(b.Name)}, crb)).To(Succeed())
		g.Expect(crb.Subjects).To(ConsistOf(
			rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "dir:auditors"},
			rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dir:carol"},
		))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(can(ctx, g, "carol", nil, "list", "releaseorders", ns)).To(BeTrue())
	}).Should(Succeed())
	g.Expect(can(ctx, g, "carol", nil, "create", "releaseorders", ns)).To(BeFalse())

	g.Expect(framework.Update(ctx, suite.Client, &cafev1alpha1.IAMRoleBinding{ObjectMeta: b.ObjectMeta}, func(b *cafev1alpha1.IAMRoleBinding) {
		b.Spec.Scope = cafev1alpha1.IAMScope{Namespaces: []string{ns}}
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(apierrors.IsNotFound(suite.Client.Get(ctx, client.ObjectKey{Name: iam.BindingName(b.Name)}, &rbacv1.ClusterRoleBinding{}))).To(BeTrue())
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: iam.BindingName(b.Name)}, &rbacv1.RoleBinding{})).To(Succeed())
	}).Should(Succeed())
}

// Deleting a binding revokes what it granted at once, without the garbage
// collector (envtest runs none); a binding recreated under the same name
// gets its grants back.
func TestADeletedBindingsGrantsGoAtOnceAndComeBackWithItsSuccessor(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	other := framework.CreateNamespace(t, suite.Client)
	r := ns + "-viewer"
	create(ctx, g, t, role(r, cafev1alpha1.IAMRoleSpec{Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAuditRead}}))
	binding := func(scope cafev1alpha1.IAMScope) *cafev1alpha1.IAMRoleBinding {
		return &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-viewers"}, Spec: cafev1alpha1.IAMRoleBindingSpec{
			Role: r, Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "viewers"}}, Scope: scope,
		}}
	}
	projected := func(g Gomega, name string) (namespaces []string, cluster bool) {
		list := &rbacv1.RoleBindingList{}
		g.Expect(suite.Client.List(ctx, list, client.MatchingLabels{cafev1alpha1.IAMBindingLabel: name})).To(Succeed())
		for _, rb := range list.Items {
			if rb.DeletionTimestamp.IsZero() {
				namespaces = append(namespaces, rb.Namespace)
			}
		}
		err := suite.Client.Get(ctx, client.ObjectKey{Name: iam.BindingName(name)}, &rbacv1.ClusterRoleBinding{})
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		return namespaces, err == nil
	}

	b := binding(cafev1alpha1.IAMScope{Namespaces: []string{ns, other}})
	create(ctx, g, t, b)
	g.Eventually(func(g Gomega) {
		namespaces, _ := projected(g, b.Name)
		g.Expect(namespaces).To(ConsistOf(ns, other))
	}).Should(Succeed())
	g.Expect(suite.Client.Delete(ctx, b)).To(Succeed())
	g.Eventually(func(g Gomega) {
		namespaces, _ := projected(g, b.Name)
		g.Expect(namespaces).To(BeEmpty())
		g.Expect(can(ctx, g, "vera", []string{"viewers"}, "list", "releaseorders", ns)).To(BeFalse())
	}).Should(Succeed())

	// Its successor, cluster-wide this time, then deleted too.
	b = binding(cafev1alpha1.IAMScope{Cluster: true})
	create(ctx, g, t, b)
	g.Eventually(func(g Gomega) {
		_, cluster := projected(g, b.Name)
		g.Expect(cluster).To(BeTrue())
		g.Expect(can(ctx, g, "vera", []string{"viewers"}, "list", "releaseorders", ns)).To(BeTrue())
	}).Should(Succeed())
	g.Expect(suite.Client.Delete(ctx, b)).To(Succeed())
	g.Eventually(func(g Gomega) {
		_, cluster := projected(g, b.Name)
		g.Expect(cluster).To(BeFalse())
	}).Should(Succeed())
}
