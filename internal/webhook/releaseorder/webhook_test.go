package releaseorder

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func world() OrderWorld {
	w := OrderWorld{Apps: map[string]*cafev1alpha1.CafeAppService{}, Revisions: map[string]*cafev1alpha1.AppRevision{}}
	for _, n := range []string{"a", "b"} {
		app := &cafev1alpha1.CafeAppService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: n, UID: types.UID("uid-" + n)}}
		app.Spec.Workload = cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](4), Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b"}}}
		w.Apps[n] = app
		w.Revisions[n+"-r2"] = &cafev1alpha1.AppRevision{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: n + "-r2", OwnerReferences: []metav1.OwnerReference{{Kind: "CafeAppService", Name: n, UID: app.UID, Controller: ptr.To(true)}}},
			Spec:       cafev1alpha1.AppRevisionSpec{App: n, Number: 2},
		}
		w.Revisions[n+"-r2"].Spec.Hash = w.Revisions[n+"-r2"].ContentHash()
	}
	return w
}

func order(apps ...cafev1alpha1.ReleaseOrderApp) *cafev1alpha1.ReleaseOrder {
	return &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weekly"}, Spec: cafev1alpha1.ReleaseOrderSpec{Title: "t", Apps: apps, RequestedBy: "alice"}}
}

func TestValidateOrder(t *testing.T) {
	a := cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r2"}
	b := cafev1alpha1.ReleaseOrderApp{Name: "b", Revision: "b-r2", DependsOn: []string{"a"}}
	open := *order(cafev1alpha1.ReleaseOrderApp{Name: "b", Revision: "b-r2"})
	open.Name, open.Status.Phase = "other", cafev1alpha1.OrderRunning
	done := open
	done.Status.Phase = cafev1alpha1.OrderSucceeded
	tests := []struct {
		name   string
		o      *cafev1alpha1.ReleaseOrder
		orders []cafev1alpha1.ReleaseOrder
		want   string
	}{
		{"a valid order passes", order(a, b), []cafev1alpha1.ReleaseOrder{done}, ""},
		{"a cycle is named with its field", order(cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r2", DependsOn: []string{"b"}}, b), nil, "spec.apps[0].dependsOn: dependency cycle a → b → a"},
		{"an unknown app is named", order(cafev1alpha1.ReleaseOrderApp{Name: "zz", Revision: "zz-r1"}), nil, "spec.apps[0].name: CafeAppService shop/zz does not exist"},
		{"an unknown revision is named", order(a, cafev1alpha1.ReleaseOrderApp{Name: "b", Revision: "b-r7"}), nil, "spec.apps[1].revision: AppRevision shop/b-r7 does not exist"},
		{"an app of an open order is refused", order(a, b), []cafev1alpha1.ReleaseOrder{open}, "spec.apps[1].name: app b is changed by the open ReleaseOrder other (Running)"},
		{"a strategy override that cannot be planned is refused", order(cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r2", Strategy: &cafev1alpha1.ReleaseOrderAppStrategy{
			Groups: []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(1)}}}}), nil, "spec.apps[0].strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := world()
			w.Orders = tt.orders
			err := ValidateOrder(tt.o, w)
			if tt.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestValidateAction(t *testing.T) {
	approved := order(cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r2"})
	approved.Status.Phase = cafev1alpha1.OrderApproved
	pending := order(cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r2"})
	pending.Spec.Approval.ApproverGroups = []string{"approvers"}
	act := func(a cafev1alpha1.ReleaseActionType, actor string, groups ...string) *cafev1alpha1.ReleaseAction {
		return &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: a, Actor: actor, ActorGroups: groups}}
	}
	tests := []struct {
		name string
		o    *cafev1alpha1.ReleaseOrder
		a    *cafev1alpha1.ReleaseAction
		want string
	}{
		{"an approver of the group may approve a new order", pending, act(cafev1alpha1.ActionApprove, "bob", "approvers"), ""},
		{"the requester may not approve", pending, act(cafev1alpha1.ActionApprove, "alice", "approvers"), "alice requested this order and cannot approve it"},
		{"someone outside the approver groups may not approve", pending, act(cafev1alpha1.ActionApprove, "eve", "devs"), "in none of the order's approver groups"},
		{"a start before approval is refused", pending, act(cafev1alpha1.ActionStart, "oscar"), "Start is not allowed while the order is PendingApproval (only when Approved)"},
		{"a start of an approved order passes", approved, act(cafev1alpha1.ActionStart, "oscar"), ""},
		{"an approval after approval is refused", approved, act(cafev1alpha1.ActionApprove, "carol"), "Approve is not allowed while the order is Approved"},
		{"only a confirm names an app", approved, &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Action: cafev1alpha1.ActionReject, App: "a", Actor: "x"}}, "spec.app: only a Confirm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := ValidateAction(tt.o, tt.a)
			if tt.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestStamp(t *testing.T) {
	g := NewWithT(t)
	o := order()
	o.Spec.RequestedBy = ""
	g.Expect(StampOrder(o, "alice", []string{"devs"})).To(Succeed())
	g.Expect(o.Spec.RequestedBy).To(Equal("alice"))
	g.Expect(o.Spec.RequestedByGroups).To(Equal([]string{"devs"}))
	o.Spec.RequestedBy = "bob"
	g.Expect(StampOrder(o, "alice", nil)).To(MatchError(ContainSubstring("spec.requestedBy: set by CAFE")))

	a := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove}}
	g.Expect(StampAction(a, "bob", []string{"approvers"})).To(Succeed())
	g.Expect(a.Spec.Actor).To(Equal("bob"))
	g.Expect(a.Labels).To(HaveKeyWithValue(cafev1alpha1.ReleaseOrderLabel, "weekly"))
	forged := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Actor: "carol"}}
	g.Expect(StampAction(forged, "bob", nil)).To(MatchError(ContainSubstring("spec.actor: set by CAFE")))
	groups := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{ActorGroups: []string{"approvers"}}}
	g.Expect(StampAction(groups, "bob", []string{"devs"})).To(MatchError(ContainSubstring("spec.actorGroups")))
}
