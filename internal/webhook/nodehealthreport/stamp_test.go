package nodehealthreport_test

// Admission on a real kube-apiserver calling CAFE's webhooks, as users the
// API server authenticates by client certificate (envtest's AddUser).

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

var suite framework.WebhookSuite

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

// reporter is a user the API server authenticates, bound to the shipped
// cafe-node-health-reporter ClusterRole when bound is true.
func reporter(t *testing.T, g Gomega, name string, bound bool) client.Client {
	t.Helper()
	u, err := suite.Env.AddUser(envtest.User{Name: name}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	if bound {
		g.Expect(suite.Admin.Create(context.Background(), &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "cafe-node-health-reporter-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-node-health-reporter"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
		})).To(Succeed())
	}
	c, err := client.New(u.Config(), client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

func node(t *testing.T, g Gomega, name string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	g.Expect(suite.Admin.Create(context.Background(), n)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(context.Background(), n) })
}

// createReport creates r as c and deletes it, as CAFE, when the test ends.
func createReport(t *testing.T, g Gomega, c client.Client, r *cafev1alpha1.NodeHealthReport) {
	t.Helper()
	g.ExpectWithOffset(1, c.Create(t.Context(), r)).To(Succeed())
	t.Cleanup(func() { _ = suite.Admin.Delete(context.Background(), r) })
}

func report(name, nodeName string) *cafev1alpha1.NodeHealthReport {
	return &cafev1alpha1.NodeHealthReport{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       cafev1alpha1.NodeHealthReportSpec{NodeName: nodeName, Source: "zabbix", Reason: "DiskLatency"},
	}
}

// Review finding 7: reporting needs the dedicated role, and a report
// records who wrote it as the API server authenticated them, whatever the
// writer put in spec.reportedBy or spec.source.
func TestSecurityF7_ReporterIdentityRecorded(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := t.Context()
	node(t, g, "identity-0")
	zabbix := reporter(t, g, "zabbix-agent", true)
	netprobe := reporter(t, g, "netprobe", true)
	stranger := reporter(t, g, "stranger", false)

	g.Expect(apierrors.IsForbidden(stranger.Create(ctx, report("identity-stranger", "identity-0")))).To(BeTrue(), "reporting needs cafe-node-health-reporter")

	r := report("identity", "identity-0")
	r.Spec.ReportedBy = "the-sre-team"
	createReport(t, g, zabbix, r)
	g.Expect(r.Spec.ReportedBy).To(Equal("zabbix-agent"), "the stamp, not the declared name")

	r.Spec.ReportedBy = "zabbix-agent"
	r.Spec.Message = "p99 3 s"
	g.Expect(netprobe.Update(ctx, r)).To(Succeed())
	g.Expect(r.Spec.ReportedBy).To(Equal("netprobe"), "the last writer")
}

// Review finding 7: a report expires at most NodeHealthReportMaxLifetime
// after its last write, whether it names no until or one far away.
func TestSecurityF7_ReportsExpire(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	node(t, g, "expire-0")
	zabbix := reporter(t, g, "zabbix-expire", true)
	latest := func() time.Time { return time.Now().Add(cafev1alpha1.NodeHealthReportMaxLifetime).Add(time.Second) }

	forever := report("expire-forever", "expire-0")
	createReport(t, g, zabbix, forever)
	g.Expect(forever.Spec.Until).NotTo(BeNil(), "a report without until gets one")
	g.Expect(forever.Spec.Until.Time).To(BeTemporally("<=", latest()))

	farAway := report("expire-far", "expire-0")
	farAway.Spec.Until = &metav1.Time{Time: time.Now().Add(30 * 24 * time.Hour)}
	createReport(t, g, zabbix, farAway)
	g.Expect(farAway.Spec.Until.Time).To(BeTemporally("<=", latest()), "a far until is shortened")

	soon := report("expire-soon", "expire-0")
	soon.Spec.Until = &metav1.Time{Time: time.Now().Add(10 * time.Minute).Truncate(time.Second)}
	want := soon.Spec.Until.Time
	createReport(t, g, zabbix, soon)
	g.Expect(soon.Spec.Until.Time).To(BeTemporally("==", want), "a nearer until is kept")

	g.Expect(forever.ActiveAt(metav1.NewTime(latest()))).To(BeFalse(), "the controller no longer counts it then")
}

// Review finding 7: a report that turns Unhealthy counts from the flip,
// not from its creation: spec.stateSince is stamped on every state change
// (and kept otherwise), and the controller's signal starts there.
func TestSecurityF7_StateFlipResetsSince(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := t.Context()
	node(t, g, "flip-0")
	zabbix := reporter(t, g, "zabbix-flip", true)

	r := report("flip", "flip-0")
	r.Spec.State = cafev1alpha1.NodeReportHealthy
	createReport(t, g, zabbix, r)
	g.Expect(r.Spec.StateSince).NotTo(BeNil())
	created := r.CreationTimestamp.Time

	// Let a second pass (the API's times have seconds), so that the flip is
	// distinguishable from the creation.
	time.Sleep(time.Until(created.Add(1100 * time.Millisecond)))
	r.Spec.Message = "still fine"
	r.Spec.StateSince = &metav1.Time{Time: created.Add(-time.Hour)}
	g.Expect(zabbix.Update(ctx, r)).To(Succeed())
	g.Expect(r.Spec.StateSince.Time).To(BeTemporally("==", created), "an edit that keeps the state keeps stateSince, whatever the writer sends")

	r.Spec.State = cafev1alpha1.NodeReportUnhealthy
	g.Expect(zabbix.Update(ctx, r)).To(Succeed())
	g.Expect(r.Spec.StateSince.Time).To(BeTemporally(">", created), "the flip restarts stateSince")
	g.Expect(r.UnhealthySince()).To(Equal(r.Spec.StateSince.Time), "the controller counts from the flip")
}
