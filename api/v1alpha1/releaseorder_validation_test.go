package v1alpha1_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func validOrder(name string) *cafev1alpha1.ReleaseOrder {
	return &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: cafev1alpha1.ReleaseOrderSpec{
			Title: "weekly release",
			Apps: []cafev1alpha1.ReleaseOrderApp{
				{Name: "a", Revision: "a-r2"},
				{Name: "b", Revision: "b-r3", DependsOn: []string{"a"}},
			},
		},
	}
}

func TestReleaseOrderDefaultsAreAppliedByTheAPIServer(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	o := validOrder("ro-defaults")
	create(t, g, o)
	g.Expect(o.Spec.FailurePolicy).To(Equal(cafev1alpha1.FailurePause))
	g.Expect(o.Spec.Approval.Required).To(HaveValue(Equal(cafev1alpha1.DefaultRequiredApprovals)))
	g.Expect(o.Spec.ProgressDeadlineSeconds).To(HaveValue(Equal(cafev1alpha1.DefaultProgressDeadlineSeconds)))
	g.Expect(o.RequiredApprovals()).To(Equal(1))

	// What was approved is what runs: the spec cannot change.
	o.Spec.Title = "something else"
	g.Expect(k8sClient.Update(context.Background(), o)).To(MatchError(ContainSubstring("spec is immutable")))
}

func TestReleaseOrderInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	requireAPIServer(t)
	now := time.Now()
	tests := []struct {
		name   string
		mutate func(*cafev1alpha1.ReleaseOrder)
		want   string
	}{
		{"no title", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Title = "" }, "spec.title"},
		{"no apps", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps = nil }, "spec.apps"},
		{"a revision of another app", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps[0].Revision = "b-r2" }, "spec.apps[0].revision"},
		{"a malformed revision", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps[0].Revision = "a-latest" }, "spec.apps[0].revision"},
		{"a dependency outside the order", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps[1].DependsOn = []string{"zz"} }, "every dependency must name another entry"},
		{"an app depending on itself", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Apps[0].DependsOn = []string{"a"} }, "cannot depend on itself"},
		{"the same app twice", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Apps[1].Name, o.Spec.Apps[1].Revision, o.Spec.Apps[1].DependsOn = "a", "a-r3", nil
		}, "spec.apps[1]"},
		{"an unknown failure policy", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.FailurePolicy = "Retry" }, "spec.failurePolicy"},
		{"zero approvals", func(o *cafev1alpha1.ReleaseOrder) { o.Spec.Approval.Required = ptr.To[int32](0) }, "spec.approval.required"},
		{"a window ending before it starts", func(o *cafev1alpha1.ReleaseOrder) {
			o.Spec.Window = &cafev1alpha1.ReleaseWindow{Start: ptr.To(metav1.NewTime(now)), End: ptr.To(metav1.NewTime(now.Add(-time.Hour)))}
		}, "spec.window.end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := validOrder("ro-invalid")
			tt.mutate(o)
			err := tryCreate(o)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestReleaseActionSpecIsImmutable(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	a := &cafev1alpha1.ReleaseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "act-immutable"},
		Spec:       cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove, Comment: "lgtm"},
	}
	create(t, g, a)
	a.Spec.Action = cafev1alpha1.ActionReject
	g.Expect(k8sClient.Update(context.Background(), a)).To(MatchError(ContainSubstring("spec is immutable")))
	bad := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "act-bad"}, Spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: "Approve-ish"}}
	g.Expect(k8sClient.Create(context.Background(), bad)).To(MatchError(ContainSubstring("spec.action")))
}
