package release

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestBuildOrderFromFlags(t *testing.T) {
	g := NewWithT(t)
	o, err := createOptions{Title: "weekly", Apps: []string{"a=r2", "b=b-r3", "c=4"}, DependsOn: []string{"b=a", "c=a,b"}, Approvals: 2,
		WindowStart: "2026-05-01T22:00:00+08:00", FailurePolicy: "RollbackAll", ProgressDeadine: 90 * time.Second}.buildOrder("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.GenerateName).To(Equal("release-"))
	g.Expect(o.Spec.Apps).To(Equal([]cafev1alpha1.ReleaseOrderApp{
		{Name: "a", Revision: "a-r2"}, {Name: "b", Revision: "b-r3", DependsOn: []string{"a"}}, {Name: "c", Revision: "c-r4", DependsOn: []string{"a", "b"}},
	}))
	g.Expect(o.Spec.Approval.Required).To(HaveValue(Equal(int32(2))))
	g.Expect(o.Spec.Window.Start.UTC()).To(Equal(time.Date(2026, 5, 1, 14, 0, 0, 0, time.UTC)))
	g.Expect(o.Spec.ProgressDeadlineSeconds).To(HaveValue(Equal(int32(90))))

	for _, bad := range []createOptions{
		{Apps: []string{"a=r2"}},
		{Title: "t"},
		{Title: "t", Apps: []string{"a"}},
		{Title: "t", Apps: []string{"a=r2"}, DependsOn: []string{"zz=a"}},
		{Title: "t", Apps: []string{"a=r2"}, WindowEnd: "tonight"},
	} {
		_, err := bad.buildOrder("x")
		g.Expect(err).To(HaveOccurred(), "%+v", bad)
	}
}

func TestStatsPerApp(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return ptr.To(metav1.NewTime(t0.Add(d))) }
	finished := func(phase cafev1alpha1.ReleaseOrderPhase, apps ...cafev1alpha1.ReleaseOrderAppStatus) cafev1alpha1.ReleaseOrder {
		return cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0)},
			Status: cafev1alpha1.ReleaseOrderStatus{Phase: phase, StartedAt: at(0), Apps: apps}}
	}
	ok := func(name string, d time.Duration) cafev1alpha1.ReleaseOrderAppStatus {
		return cafev1alpha1.ReleaseOrderAppStatus{Name: name, Phase: cafev1alpha1.AppSucceeded, StartedAt: at(0), FinishedAt: at(d)}
	}
	orders := []cafev1alpha1.ReleaseOrder{
		finished(cafev1alpha1.OrderSucceeded, ok("pay", time.Minute), ok("gw", 2*time.Minute)),
		finished(cafev1alpha1.OrderSucceeded, ok("pay", 3*time.Minute)),
		finished(cafev1alpha1.OrderRolledBack, cafev1alpha1.ReleaseOrderAppStatus{Name: "pay", Phase: cafev1alpha1.AppRolledBack, StartedAt: at(0), RollbackStartedAt: at(time.Minute)}),
		{Status: cafev1alpha1.ReleaseOrderStatus{Phase: cafev1alpha1.OrderRunning, StartedAt: at(0), Apps: []cafev1alpha1.ReleaseOrderAppStatus{ok("pay", time.Hour)}}},
	}
	stats := Stats(orders, "", time.Time{})
	g.Expect(stats).To(HaveLen(2))
	pay := stats[1]
	g.Expect(pay.App).To(Equal("pay"))
	g.Expect(pay.Orders).To(Equal(3), "running orders are not counted")
	g.Expect(pay.Succeeded).To(Equal(2))
	g.Expect(pay.RolledBck).To(Equal(1))
	g.Expect(pay.mean()).To(Equal(2 * time.Minute))
	g.Expect(pay.p95()).To(Equal(3 * time.Minute))
	g.Expect(Stats(orders, "gw", time.Time{})).To(HaveLen(1))
	g.Expect(Stats(orders, "", t0.Add(time.Hour))).To(BeEmpty())
}
