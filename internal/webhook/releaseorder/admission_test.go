package releaseorder_test

// Admission on a real kube-apiserver: envtest installs config/webhook's
// configurations pointed at a local server, and that server is CAFE's own
// (manager.New with webhooks only, its certificates and caBundles issued by
// CAFE as in a cluster). Requests come from users the API server
// authenticates by client certificate (envtest's AddUser), so the identity
// the webhooks see is the API server's, not a field of the request.

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// suite.Admin is envtest's administrator (system:masters): it plays CAFE's
// controller where a test needs an order in some state.
var suite framework.WebhookSuite

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

// person is a user the API server authenticates by a client certificate,
// bound in ns to the example ClusterRoles cafe-release-<role>.
func person(t *testing.T, g Gomega, ns, name string, groups []string, roles ...string) client.Client {
	t.Helper()
	u, err := suite.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	for _, role := range roles {
		g.Expect(suite.Admin.Create(context.Background(), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role + "-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-release-" + role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
		})).To(Succeed())
	}
	c, err := client.New(u.Config(), client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// appWithRevisions creates an app of 4 replicas over two zones and its
// revisions <name>-r1..rN, as CAFE's app controller would (no controller
// runs here).
func appWithRevisions(ctx context.Context, g Gomega, ns, name string, revisions int) {
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":v1"}}}},
			Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](4), Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b"}}},
		},
	}
	g.Expect(suite.Admin.Create(ctx, app)).To(Succeed())
	for n := 1; n <= revisions; n++ {
		rev := &cafev1alpha1.AppRevision{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-r%d", name, n), OwnerReferences: []metav1.OwnerReference{{
				APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "CafeAppService", Name: name, UID: app.UID, Controller: ptr.To(true),
			}}},
			Spec: cafev1alpha1.AppRevisionSpec{App: name, Number: int64(n), Template: app.Spec.Template},
		}
		rev.Spec.Hash = rev.ContentHash()
		g.Expect(suite.Admin.Create(ctx, rev)).To(Succeed())
	}
}

func TestOrdersAreJudgedAtAdmissionNamingTheField(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	for _, name := range []string{"a", "b", "c"} {
		appWithRevisions(ctx, g, ns, name, 2)
	}
	alice := person(t, g, ns, "alice", []string{"release-requesters"}, "requester")

	// A valid order is admitted, its requester the authenticated user.
	first := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "first"}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title: "first", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "a", Revision: "a-r2"}},
	}}
	g.Expect(alice.Create(ctx, first)).To(Succeed())
	g.Expect(first.Spec.RequestedBy).To(Equal("alice"))
	g.Expect(first.Spec.RequestedByGroups).To(ConsistOf("release-requesters", "system:authenticated"))

	app := func(name, rev string, dependsOn ...string) cafev1alpha1.ReleaseOrderApp {
		return cafev1alpha1.ReleaseOrderApp{Name: name, Revision: rev, DependsOn: dependsOn}
	}
	tests := []struct {
		name   string
		mutate func(*cafev1alpha1.ReleaseOrder)
		want   string
	}{
		// The CRD's own rules (CEL), before any webhook.
		{"no title", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Title = "" }, "spec.title"},
		{"a revision of another app", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("b", "c-r1")} }, "spec.apps[0].revision"},
		{"a dependency outside the order", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("b", "b-r2", "zz")}
		},
			"spec.apps[].dependsOn: every dependency must name another entry of spec.apps"},
		// The validating webhook.
		{"an app that does not exist", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("zz", "zz-r1")} },
			"spec.apps[0].name: CafeAppService " + ns + "/zz does not exist"},
		{"a revision that does not exist", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("b", "b-r2"), app("c", "c-r9")}
		},
			"spec.apps[1].revision: AppRevision " + ns + "/c-r9 does not exist"},
		{"a dependency cycle", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("b", "b-r2", "c"), app("c", "c-r2", "b")}
		}, "spec.apps[0].dependsOn: dependency cycle b → c → b"},
		{"an app another open order changes", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("b", "b-r2"), app("a", "a-r1")}
		},
			"spec.apps[1].name: app a is changed by the open ReleaseOrder first (PendingApproval)"},
		{"a strategy override the app's workload cannot plan", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{app("b", "b-r2")}
			o.Spec.Apps[0].Strategy = &cafev1alpha1.ReleaseOrderAppStrategy{Groups: []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(1)}}}
		}, "spec.apps[0].strategy: with the app's workload the release cannot be planned"},
		// The mutating webhook: the requester is who the API server says.
		{"a requester naming someone else", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.RequestedBy = "bob" },
			`spec.requestedBy: set by CAFE from the authenticated user (alice); it cannot name "bob"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bad-"}, Spec: cafev1alpha1.ReleaseOrderSpec{
				Title: "bad", Apps: []cafev1alpha1.ReleaseOrderApp{app("b", "b-r2")},
			}}
			tt.mutate(o)
			g.Expect(alice.Create(ctx, o)).To(MatchError(ContainSubstring(tt.want)))
		})
	}
	orders := &cafev1alpha1.ReleaseOrderList{}
	g.Expect(suite.Admin.List(ctx, orders, client.InNamespace(ns))).To(Succeed())
	g.Expect(orders.Items).To(HaveLen(1), "only the valid order exists")

	// An open order cannot be deleted, not even by an administrator; a
	// finished one can.
	g.Expect(suite.Admin.Delete(ctx, first)).To(MatchError(ContainSubstring("is PendingApproval: an open order cannot be deleted")))
	first.Status.Phase = cafev1alpha1.OrderCancelled
	g.Expect(suite.Admin.Status().Update(ctx, first)).To(Succeed())
	g.Expect(suite.Admin.Delete(ctx, first)).To(Succeed())
}

func TestActionsAreJudgedAsTheAuthenticatedUser(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appWithRevisions(ctx, g, ns, "a", 2)
	// alice requests and may approve (others' orders); bob and eve approve,
	// eve outside the order's approver groups; oscar operates.
	alice := person(t, g, ns, "alice", []string{"release-requesters"}, "requester", "approver")
	bob := person(t, g, ns, "bob", []string{"release-approvers"}, "approver")
	eve := person(t, g, ns, "eve", []string{"auditors"}, "approver")
	oscar := person(t, g, ns, "oscar", nil, "operator")

	order := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weekly"}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title:    "weekly",
		Apps:     []cafev1alpha1.ReleaseOrderApp{{Name: "a", Revision: "a-r2"}},
		Approval: cafev1alpha1.ReleaseApproval{Required: ptr.To[int32](2), ApproverGroups: []string{"release-approvers"}},
	}}
	g.Expect(alice.Create(ctx, order)).To(Succeed())
	g.Expect(order.Spec.RequestedBy).To(Equal("alice"))

	type row struct {
		name string
		as   client.Client
		spec cafev1alpha1.ReleaseActionSpec
		// want is a substring of the refusal; "" means admitted.
		want string
		// actor and group are what an admitted action records.
		actor, group string
	}
	approve := cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove}
	with := func(s cafev1alpha1.ReleaseActionSpec, f func(*cafev1alpha1.ReleaseActionSpec)) cafev1alpha1.ReleaseActionSpec {
		f(&s)
		return s
	}
	ref := "ReleaseOrder " + ns + "/weekly"
	check := func(rows []row) {
		t.Helper()
		for _, r := range rows {
			t.Run(r.name, func(t *testing.T) {
				g := NewWithT(t)
				a := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "act-"}, Spec: r.spec}
				err := r.as.Create(ctx, a)
				if r.want != "" {
					g.Expect(err).To(MatchError(ContainSubstring(r.want)))
					return
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(a.Spec.Actor).To(Equal(r.actor))
				g.Expect(a.Spec.ActorGroups).To(ContainElement(r.group))
				g.Expect(a.Labels).To(HaveKeyWithValue(cafev1alpha1.ReleaseOrderLabel, "weekly"))
			})
		}
	}

	check([]row{
		{name: "the requester approving her own order", as: alice, spec: approve,
			want: "spec.action: alice requested this order and cannot approve it"},
		{name: "a verb RBAC does not grant", as: bob, spec: with(approve, func(s *cafev1alpha1.ReleaseActionSpec) { s.Action = cafev1alpha1.ActionStart }),
			want: `bob may not start ` + ref + `: RBAC grants no verb "start"`},
		{name: "a start before approval", as: oscar, spec: with(approve, func(s *cafev1alpha1.ReleaseActionSpec) { s.Action = cafev1alpha1.ActionStart }),
			want: "spec.action: " + ref + ": Start is not allowed while the order is PendingApproval (only when Approved)"},
		{name: "an actor naming someone else", as: bob, spec: with(approve, func(s *cafev1alpha1.ReleaseActionSpec) { s.Actor = "carol" }),
			want: `spec.actor: set by CAFE from the authenticated user (bob); it cannot name "carol"`},
		{name: "groups written by the client", as: bob, spec: with(approve, func(s *cafev1alpha1.ReleaseActionSpec) { s.ActorGroups = []string{"release-approvers", "admins"} }),
			want: "spec.actorGroups: set by CAFE from the authenticated user's groups"},
		{name: "an approver outside the approver groups", as: eve, spec: approve,
			want: "spec.action: eve is in none of the order's approver groups (release-approvers)"},
		{name: "an order that does not exist", as: bob, spec: with(approve, func(s *cafev1alpha1.ReleaseActionSpec) { s.Order = "nope" }),
			want: "spec.order: ReleaseOrder " + ns + "/nope does not exist"},
		{name: "an approval naming one app", as: bob, spec: with(approve, func(s *cafev1alpha1.ReleaseActionSpec) { s.App = "a" }),
			want: "spec.app: only a Confirm can name one app"},
		{name: "an approval by an approver in the groups", as: bob, spec: approve, actor: "bob", group: "release-approvers"},
	})

	// The controller records bob's approval (played by the admin here);
	// the webhook reads the order as it stands.
	g.Expect(suite.Admin.Get(ctx, client.ObjectKeyFromObject(order), order)).To(Succeed())
	order.Status.Phase = cafev1alpha1.OrderPendingApproval
	order.Status.Approvals = []cafev1alpha1.ReleaseApprovalRecord{{User: "bob", Time: metav1.Now()}}
	g.Expect(suite.Admin.Status().Update(ctx, order)).To(Succeed())
	check([]row{
		{name: "a second approval by the same person", as: bob, spec: approve, want: "spec.action: bob already approved this order"},
	})

	order.Status.Phase = cafev1alpha1.OrderRunning
	g.Expect(suite.Admin.Status().Update(ctx, order)).To(Succeed())
	confirm := cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionConfirm}
	check([]row{
		{name: "an approval while running", as: bob, spec: approve,
			want: "spec.action: " + ref + ": Approve is not allowed while the order is Running (only when PendingApproval)"},
		{name: "a confirmation of an app not in the order", as: oscar, spec: with(confirm, func(s *cafev1alpha1.ReleaseActionSpec) { s.App = "zz" }),
			want: "spec.app: " + ref + " has no app zz"},
		{name: "a confirmation of an app of the order", as: oscar, spec: with(confirm, func(s *cafev1alpha1.ReleaseActionSpec) { s.App = "a" }),
			actor: "oscar", group: "system:authenticated"},
		{name: "a pause by the operator", as: oscar, spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionPause},
			actor: "oscar", group: "system:authenticated"},
	})
}

// Finding 4: anyone with delete on releaseorders — the requester with a
// namespace editor's rights — could remove a finished order, its audit
// trail with it. Now deleting a finished order needs the verb purge (CAFE's
// retention has it), whatever else RBAC grants.
func TestSecurityF4_RequesterCannotDeleteRecord(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appWithRevisions(ctx, g, ns, "a", 2)
	alice := person(t, g, ns, "alice", nil, "requester")
	// alice also edits the namespace: RBAC lets her delete orders.
	grant := func(user, name string, verbs ...string) {
		g.Expect(suite.Admin.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"cafe.io"}, Resources: []string{"releaseorders"}, Verbs: verbs}},
		})).To(Succeed())
		g.Expect(suite.Admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		})).To(Succeed())
	}
	grant("alice", "order-editor", "get", "list", "delete")
	order := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weekly"}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title: "weekly", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "a", Revision: "a-r2"}}, RetentionDays: ptr.To[int32](1),
	}}
	g.Expect(alice.Create(ctx, order)).To(Succeed())
	order.Status.Phase = cafev1alpha1.OrderSucceeded
	g.Expect(suite.Admin.Status().Update(ctx, order)).To(Succeed())

	g.Expect(alice.Delete(ctx, order)).To(MatchError(ContainSubstring(
		`ReleaseOrder ` + ns + `/weekly is the record of a finished release: CAFE deletes it under the cluster's retention policy; alice may not delete it: RBAC grants no verb "purge"`)))
	g.Expect(suite.Admin.Get(ctx, client.ObjectKeyFromObject(order), &cafev1alpha1.ReleaseOrder{})).To(Succeed(), "the record is kept")

	// An identity granted the dedicated verb may (the shipped example role).
	rita := person(t, g, ns, "rita", nil, "records-admin")
	g.Expect(rita.Delete(ctx, order)).To(Succeed())
}
