package releaseorder

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/seal"
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
	tampered := *open.DeepCopy()
	tampered.Status.Conditions = []metav1.Condition{{Type: cafev1alpha1.OrderAuditIntactCondition, Status: metav1.ConditionFalse, Reason: cafev1alpha1.AuditReasonTrailTampered}}
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
		// Review F3/F4: an order whose trail was tampered with never
		// progresses again; it must not lock its apps for good.
		{"an order stopped by a tampered trail holds no app", order(a, b), []cafev1alpha1.ReleaseOrder{tampered}, ""},
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
		name   string
		o      *cafev1alpha1.ReleaseOrder
		a      *cafev1alpha1.ReleaseAction
		policy cafev1alpha1.ApprovalPolicy
		want   string
	}{
		{"an approver of the group may approve a new order", pending, act(cafev1alpha1.ActionApprove, "bob", "approvers"), none, ""},
		{"the requester may not approve", pending, act(cafev1alpha1.ActionApprove, "alice", "approvers"), none, "alice requested this order and cannot approve it"},
		{"someone outside the approver groups may not approve", pending, act(cafev1alpha1.ActionApprove, "eve", "devs"), none, "in none of the order's approver groups"},
		{"a start before approval is refused", pending, act(cafev1alpha1.ActionStart, "oscar"), none, "Start is not allowed while the order is PendingApproval (only when Approved)"},
		{"a start of an approved order passes", approved, act(cafev1alpha1.ActionStart, "oscar"), none, ""},
		{"an approval after approval is refused", approved, act(cafev1alpha1.ActionApprove, "carol"), none, "Approve is not allowed while the order is Approved"},
		{"only a confirm names an app", approved, &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Action: cafev1alpha1.ActionReject, App: "a", Actor: "x"}}, none, "spec.app: only a Confirm"},
		{"a ServiceAccount may not approve", pending, act(cafev1alpha1.ActionApprove, "system:serviceaccount:shop:ci", "approvers"), none, "is a ServiceAccount: four eyes needs people"},
		{"a ServiceAccount the cluster policy names may approve", pending, act(cafev1alpha1.ActionApprove, "system:serviceaccount:shop:ci", "approvers"),
			cafev1alpha1.ApprovalPolicy{ServiceAccounts: []string{"system:serviceaccount:shop:ci"}}, ""},
		{"the cluster's approver groups bind every order", pending, act(cafev1alpha1.ActionApprove, "bob", "approvers"),
			cafev1alpha1.ApprovalPolicy{ApproverGroups: []string{"change-board"}}, "bob is in none of the cluster's approver groups (change-board)"},
		{"CAFE's own identity may not approve", pending, act(cafev1alpha1.ActionApprove, cafev1alpha1.ControllerIdentity, "approvers"), none, "CAFE's own identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := ValidateAction(tt.o, tt.a, tt.policy)
			if tt.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

var none cafev1alpha1.ApprovalPolicy

var testKey = seal.NewKey([]byte("0123456789abcdef0123456789abcdef"))

func TestStamp(t *testing.T) {
	g := NewWithT(t)
	o := order()
	o.Spec.RequestedBy = ""
	g.Expect(StampOrder(o, "alice", []string{"devs"}, testKey)).To(Succeed())
	g.Expect(o.Spec.RequestedBy).To(Equal("alice"))
	g.Expect(o.Spec.RequestedByGroups).To(Equal([]string{"devs"}))
	g.Expect(testKey.VerifyOrder("shop", o.Spec)).To(Succeed())
	g.Expect(StampOrder(o, "alice", nil, testKey)).To(MatchError(ContainSubstring("spec.seal: set by CAFE's admission webhook")))
	o.Spec.RequestedBy = "bob"
	g.Expect(StampOrder(o, "alice", nil, testKey)).To(MatchError(ContainSubstring("spec.requestedBy: set by CAFE")))

	at := metav1.NewMicroTime(time.Date(2026, 5, 1, 9, 0, 0, 1000, time.UTC))
	a := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, Spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove}}
	g.Expect(StampAction(a, "bob", []string{"approvers"}, at, testKey)).To(Succeed())
	g.Expect(a.Spec.Actor).To(Equal("bob"))
	g.Expect(a.Spec.AdmittedAt).To(Equal(&at))
	g.Expect(testKey.VerifyAction("shop", a.Spec)).To(Succeed())
	g.Expect(a.Labels).To(HaveKeyWithValue(cafev1alpha1.ReleaseOrderLabel, "weekly"))
	forged := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Actor: "carol"}}
	g.Expect(StampAction(forged, "bob", nil, at, testKey)).To(MatchError(ContainSubstring("spec.actor: set by CAFE")))
	groups := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{ActorGroups: []string{"approvers"}}}
	g.Expect(StampAction(groups, "bob", []string{"devs"}, at, testKey)).To(MatchError(ContainSubstring("spec.actorGroups")))
	early := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{AdmittedAt: &at}}
	g.Expect(StampAction(early, "bob", nil, at, testKey)).To(MatchError(ContainSubstring("spec.admittedAt: set by CAFE's admission webhook")))
	sealed := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Seal: "x"}}
	g.Expect(StampAction(sealed, "bob", nil, at, testKey)).To(MatchError(ContainSubstring("spec.seal: set by CAFE's admission webhook")))
}

// F12: no person's order or action is recorded under CAFE's own identity.
func TestSecurityF12_ControllerIdentityIsReserved(t *testing.T) {
	g := NewWithT(t)
	o := order()
	o.Spec.RequestedBy = ""
	g.Expect(StampOrder(o, cafev1alpha1.ControllerIdentity, nil, testKey)).To(MatchError(ContainSubstring("CAFE's own identity")))
	a := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove}}
	g.Expect(StampAction(a, cafev1alpha1.ControllerIdentity, nil, metav1.NowMicro(), testKey)).To(MatchError(ContainSubstring("CAFE's own identity")))
}

// F3a: an action on an order whose name does not fit a label value (one
// created before names were bounded) still gets a valid label, so it is
// admitted and the order can be cancelled.
func TestSecurityF3a_LongOrderNameLabelsStayValid(t *testing.T) {
	g := NewWithT(t)
	for _, n := range []int{63, 64, 70, 253} {
		name := strings.Repeat("a", n-1) + "z"
		a := &cafev1alpha1.ReleaseAction{Spec: cafev1alpha1.ReleaseActionSpec{Order: name, Action: cafev1alpha1.ActionCancel}}
		g.Expect(StampAction(a, "alice", nil, metav1.NowMicro(), testKey)).To(Succeed())
		v := a.Labels[cafev1alpha1.ReleaseOrderLabel]
		g.Expect(validation.IsValidLabelValue(v)).To(BeEmpty(), "label value for a %d-character name: %q", n, v)
		o := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Name: name}}
		g.Expect(validation.IsQualifiedName(o.HoldAnnotation())).To(BeEmpty(), "hold annotation for a %d-character name", n)
	}
	// Distinct long names give distinct keys.
	long := func(c string) *cafev1alpha1.ReleaseOrder {
		return &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 60) + c}}
	}
	g.Expect(long("x").HoldAnnotation()).NotTo(Equal(long("y").HoldAnnotation()))
}
