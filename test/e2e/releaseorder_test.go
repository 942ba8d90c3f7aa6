package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/managerproc"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// releaseUser gives user (a real client certificate of the control plane)
// the example ClusterRole role in ns, and returns its kubeconfig and a
// client.
func releaseUser(t *testing.T, ctx context.Context, ns, user, role string) (string, client.Client) {
	t.Helper()
	g := NewWithT(t)
	kubeconfig, err := env.ControlPlane.UserKubeconfig(user, "release-"+role+"s")
	g.Expect(err).NotTo(HaveOccurred())
	bind := func(bindingNS string) {
		g.Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: bindingNS, Name: role + "-" + user + "-" + ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-release-" + role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		})).To(Succeed())
	}
	bind(ns)
	if role == "auditor" {
		// The public key is in CAFE's namespace.
		bind(install.Namespace)
	}
	return kubeconfig, kubeconfigClient(t, kubeconfig)
}

// cafeCLI runs `cafe <args> -n ns --kubeconfig kubeconfig`.
func cafeCLI(ctx context.Context, t *testing.T, ns, kubeconfig string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, cafeBinary(t), append(args, "-n", ns, "--kubeconfig", kubeconfig)...).CombinedOutput()
	return string(out), err
}

// orderApp creates an app of 3 pods (one per zone) released group by
// group, publishes r1 as the admin and waits until it runs, then records
// r2 (image v2) without publishing it.
func orderApp(ctx context.Context, g Gomega, ns, name string, strategy func(*cafev1alpha1.CafeDeploymentStrategy)) *cafev1alpha1.CafeAppService {
	s := cafev1alpha1.CafeDeploymentStrategy{UpgradeType: cafev1alpha1.UpgradeTypeBatch, BatchSize: ptr.To(intstr.FromInt32(1))}
	if strategy != nil {
		strategy(&s)
	}
	app := publishedApp(ctx, g, ns, name, 3, s)
	recordR2(ctx, g, app, "example.com/"+name+":v2")
	return app
}

// waitForOrder waits until the order satisfies cond and returns it.
func waitForOrder(ctx context.Context, g Gomega, ns, name string, cond func(*cafev1alpha1.ReleaseOrder) bool) *cafev1alpha1.ReleaseOrder {
	seen, err := framework.WaitForObject(ctx, k8sClient, &cafev1alpha1.ReleaseOrderList{}, ns, name, cond)
	var status any
	if seen != nil {
		status = fmt.Sprintf("phase %s (%s), apps %+v", seen.Status.Phase, seen.Status.Message, seen.Status.Apps)
	}
	g.Expect(err).NotTo(HaveOccurred(), "ReleaseOrder %s: last status %v", name, status)
	return seen
}

func phaseIs(p cafev1alpha1.ReleaseOrderPhase) func(*cafev1alpha1.ReleaseOrder) bool {
	return func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase == p }
}

// holdPodsWithProvider puts a traffic provider's finalizer on every pod of
// the app: CAFE's drain waits for the provider to let go, so the release
// cannot progress while it holds them.
func setProviderFinalizer(ctx context.Context, g Gomega, ns, app string, hold bool) {
	const fin = cafev1alpha1.TrafficFinalizerPrefix + "e2e-registry"
	for _, p := range listPods(ctx, g, ns, map[string]string{cafev1alpha1.AppLabel: app}) {
		g.Expect(update(ctx, p, func(p *corev1.Pod) {
			p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == fin })
			if hold {
				p.Finalizers = append(p.Finalizers, fin)
			}
		})).To(Succeed())
	}
}

func images(ctx context.Context, g Gomega, ns, app string) []string {
	var out []string
	for _, p := range listPods(ctx, g, ns, map[string]string{cafev1alpha1.AppLabel: app}) {
		out = append(out, p.Spec.Containers[0].Image)
	}
	slices.Sort(out)
	return out
}

// Issue 5's scenario: a → b → c plus an independent d; two approvals from
// users other than the requester (real client certificates); b starts only
// after a succeeded, d runs alongside a; c's release makes no progress and
// RollbackAll returns c, b, a (and d) to r1 in reverse order; the recorded
// requester and approvers are the authenticated users; the trail verifies
// and a hand-edited entry is named. Bad input is refused at admission.
func TestReleaseOrderApprovalsDependencyOrderAndRollbackAll(t *testing.T) {
	runsBesideOthers(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, k8sClient)
	for _, name := range []string{"a", "b", "c", "d"} {
		orderApp(ctx, g, ns, name, nil)
	}
	alice, aliceClient := releaseUser(t, ctx, ns, "alice", "requester")
	bob, bobClient := releaseUser(t, ctx, ns, "bob", "approver")
	carol, _ := releaseUser(t, ctx, ns, "carol", "approver")
	oscar, _ := releaseUser(t, ctx, ns, "oscar", "operator")
	dave, _ := releaseUser(t, ctx, ns, "dave", "auditor")
	// alice may approve orders too, only not her own (four eyes).
	g.Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "approver-alice"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-release-approver"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	})).To(Succeed())

	out, err := cafeCLI(ctx, t, ns, alice, "release", "create", "weekly", "--title", "weekly release", "--ticket", "CHG-42",
		"--app", "a=r2", "--app", "b=r2", "--app", "c=r2", "--app", "d=r2", "--depends-on", "b=a", "--depends-on", "c=b",
		"--approvals", "2", "--failure-policy", "RollbackAll", "--progress-deadline", "30s")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("recorded as requested by alice"))

	// Bad orders are refused at admission, naming the field.
	bad := func(mutate func(*cafev1alpha1.ReleaseOrder)) error {
		o := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bad-"}, Spec: cafev1alpha1.ReleaseOrderSpec{
			Title: "bad", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "zz", Revision: "zz-r1"}},
		}}
		mutate(o)
		return aliceClient.Create(ctx, o)
	}
	g.Expect(bad(func(o *cafev1alpha1.ReleaseOrder) {})).To(MatchError(ContainSubstring("spec.apps[0].name: CafeAppService " + ns + "/zz does not exist")))
	g.Expect(bad(func(o *cafev1alpha1.ReleaseOrder) {
		o.Spec.Apps[0] = cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r9"}
	})).
		To(MatchError(ContainSubstring("spec.apps[0].revision: AppRevision " + ns + "/a-r9 does not exist")))
	g.Expect(bad(func(o *cafev1alpha1.ReleaseOrder) {
		o.Spec.Apps[0] = cafev1alpha1.ReleaseOrderApp{Name: "a", Revision: "a-r2"}
	})).
		To(MatchError(ContainSubstring("spec.apps[0].name: app a is changed by the open ReleaseOrder weekly")))
	g.Expect(bad(func(o *cafev1alpha1.ReleaseOrder) {
		o.Spec.Apps = []cafev1alpha1.ReleaseOrderApp{{Name: "zz", Revision: "zz-r1", DependsOn: []string{"yy"}}, {Name: "yy", Revision: "yy-r1", DependsOn: []string{"zz"}}}
	})).To(MatchError(ContainSubstring("spec.apps[1].dependsOn: dependency cycle yy → zz → yy")))
	g.Expect(bad(func(o *cafev1alpha1.ReleaseOrder) { o.Spec.RequestedBy = "bob" })).To(MatchError(ContainSubstring("spec.requestedBy: set by CAFE")))
	g.Expect(bobClient.Delete(ctx, &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weekly"}})).To(HaveOccurred())
	g.Expect(k8sClient.Delete(ctx, &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weekly"}})).
		To(MatchError(ContainSubstring("an open order cannot be deleted")))

	// Four eyes, RBAC and phases decide at admission.
	out, err = cafeCLI(ctx, t, ns, alice, "release", "approve", "weekly")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("alice requested this order and cannot approve it"))
	out, err = cafeCLI(ctx, t, ns, bob, "release", "start", "weekly")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring(`bob may not start ReleaseOrder ` + ns + `/weekly: RBAC grants no verb "start"`))
	out, err = cafeCLI(ctx, t, ns, oscar, "release", "start", "weekly")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("Start is not allowed while the order is PendingApproval"))
	forged := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forged"},
		Spec: cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove, Actor: "carol"}}
	g.Expect(bobClient.Create(ctx, forged)).To(MatchError(ContainSubstring("spec.actor: set by CAFE")))

	out, err = cafeCLI(ctx, t, ns, bob, "release", "approve", "weekly", "--comment", "diff reviewed")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("approvals 1/2"))
	out, err = cafeCLI(ctx, t, ns, bob, "release", "approve", "weekly")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("bob already approved this order"))
	out, err = cafeCLI(ctx, t, ns, carol, "release", "approve", "weekly")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("ReleaseOrder weekly is Approved"))

	// c's pods are held by a traffic provider that never lets go: its
	// release cannot progress.
	setProviderFinalizer(ctx, g, ns, "c", true)
	out, err = cafeCLI(ctx, t, ns, oscar, "release", "start", "weekly", "--comment", "go")
	g.Expect(err).NotTo(HaveOccurred(), out)

	failed := waitForOrder(ctx, g, ns, "weekly", func(o *cafev1alpha1.ReleaseOrder) bool {
		c := o.Status.AppStatus("c")
		return c != nil && c.RollbackStartedAt != nil || o.Status.Phase.IsFinished()
	})
	g.Expect(failed.Status.Phase).To(Equal(cafev1alpha1.OrderRollingBack))
	// The registry recovers and lets go of c's pods.
	setProviderFinalizer(ctx, g, ns, "c", false)
	final := waitForOrder(ctx, g, ns, "weekly", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack), "%s: %+v", final.Status.Message, final.Status.Apps)

	st := final.Status
	a, b, c, d := st.AppStatus("a"), st.AppStatus("b"), st.AppStatus("c"), st.AppStatus("d")
	// b only after a succeeded; c only after b; d alongside a.
	g.Expect(b.StartedAt.Time).NotTo(BeTemporally("<", a.FinishedAt.Time))
	g.Expect(c.StartedAt.Time).NotTo(BeTemporally("<", b.FinishedAt.Time))
	g.Expect(d.StartedAt.Time).To(BeTemporally("<", a.FinishedAt.Time))
	// Rolled back in reverse dependency order, every app to r1.
	g.Expect(b.RollbackStartedAt.Time).NotTo(BeTemporally("<", c.RolledBackAt.Time))
	g.Expect(a.RollbackStartedAt.Time).NotTo(BeTemporally("<", b.RolledBackAt.Time))
	for _, s := range []*cafev1alpha1.ReleaseOrderAppStatus{a, b, c, d} {
		g.Expect(s.Phase).To(Equal(cafev1alpha1.AppRolledBack), s.Name)
		g.Expect(s.FromRevision).To(Equal(s.Name + "-r1"))
		app := &cafev1alpha1.CafeAppService{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: s.Name}, app)).To(Succeed())
		g.Expect(app.Spec.PublishedRevision).To(Equal(s.Name + "-r1"))
		g.Expect(images(ctx, g, ns, s.Name)).To(Equal([]string{"example.com/app:v1", "example.com/app:v1", "example.com/app:v1"}), s.Name)
	}
	// The record names the authenticated users.
	g.Expect(final.Spec.RequestedBy).To(Equal("alice"))
	g.Expect(final.Spec.RequestedByGroups).To(ContainElement("release-requesters"))
	g.Expect([]string{st.Approvals[0].User, st.Approvals[1].User}).To(Equal([]string{"bob", "carol"}))
	g.Expect(st.Approvals[0].Comment).To(Equal("diff reviewed"))
	g.Expect(st.StartedBy).To(Equal("oscar"))

	out, err = cafeCLI(ctx, t, ns, dave, "release", "history", "weekly")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(MatchRegexp(`(?m)^\d+\s+\S+\s+bob\s+Approve\s`))
	out, err = cafeCLI(ctx, t, ns, dave, "release", "stats")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(MatchRegexp(`(?m)^c\s+1\s+0\s+0%\s+\S+\s+\S+\s+1$`))

	// The auditor verifies the trail; an entry edited by hand is named.
	out, err = cafeCLI(ctx, t, ns, dave, "audit", "verify", "weekly")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("OK   ReleaseOrder " + ns + "/weekly"))
	export, err := cafeCLI(ctx, t, ns, dave, "audit", "export", "weekly")
	g.Expect(err).NotTo(HaveOccurred(), export)
	exportFile := filepath.Join(t.TempDir(), "audit.jsonl")
	g.Expect(os.WriteFile(exportFile, []byte(export), 0o600)).To(Succeed())
	out, err = cafeCLI(ctx, t, ns, dave, "audit", "verify", "-f", exportFile)
	g.Expect(err).NotTo(HaveOccurred(), out)

	edited := final.DeepCopy()
	edited.Status.Audit[5].Reason = "nothing to see"
	g.Expect(k8sClient.Status().Update(ctx, edited)).To(Succeed())
	out, err = cafeCLI(ctx, t, ns, dave, "audit", "verify", "weekly")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("FAIL ReleaseOrder " + ns + "/weekly: entry 6 (seq 6): its content does not match its hash: the entry was altered"))
	lines := strings.Split(strings.TrimSpace(export), "\n")
	removed := strings.Join(append(slices.Clone(lines[:3]), lines[4:]...), "\n")
	g.Expect(os.WriteFile(exportFile, []byte(removed), 0o600)).To(Succeed())
	out, err = cafeCLI(ctx, t, ns, dave, "audit", "verify", "-f", exportFile)
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("entry 4 (seq 5): expected seq 4"))
}

// A window that has not opened keeps a started order Scheduled; one that
// closes while the order runs pauses it, its app held.
func TestReleaseOrderChangeWindow(t *testing.T) {
	runsBesideOthers(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, k8sClient)
	orderApp(ctx, g, ns, "early", nil)
	orderApp(ctx, g, ns, "late", nil)
	requester, _ := releaseUser(t, ctx, ns, "rita", "requester")
	approver, _ := releaseUser(t, ctx, ns, "adam", "approver")
	operator, _ := releaseUser(t, ctx, ns, "otto", "operator")
	cli := func(kubeconfig string, args ...string) string {
		out, err := cafeCLI(ctx, t, ns, kubeconfig, args...)
		g.Expect(err).NotTo(HaveOccurred(), out)
		return out
	}

	now := time.Now()
	cli(requester, "release", "create", "tonight", "--title", "tonight", "--app", "early=r2",
		"--window-start", now.Add(time.Hour).Format(time.RFC3339), "--window-end", now.Add(2*time.Hour).Format(time.RFC3339))
	cli(approver, "release", "approve", "tonight")
	cli(operator, "release", "start", "tonight")
	o := waitForOrder(ctx, g, ns, "tonight", phaseIs(cafev1alpha1.OrderScheduled))
	g.Expect(o.Status.Message).To(ContainSubstring("the window opens at"))
	g.Consistently(func(g Gomega) {
		ro := &cafev1alpha1.ReleaseOrder{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tonight"}, ro)).To(Succeed())
		g.Expect(ro.Status.Phase).To(Equal(cafev1alpha1.OrderScheduled))
		app := &cafev1alpha1.CafeAppService{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "early"}, app)).To(Succeed())
		g.Expect(app.Spec.PublishedRevision).To(Equal("early-r1"))
	}, 3*time.Second, 200*time.Millisecond).Should(Succeed())

	// An open window that closes mid-run: the app waits for confirmation
	// (the order's strategy override) past the end.
	end := time.Now().Add(60 * time.Second).Truncate(time.Second)
	order := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "closing"}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title:  "closing",
		Apps:   []cafev1alpha1.ReleaseOrderApp{{Name: "late", Revision: "late-r2", Strategy: &cafev1alpha1.ReleaseOrderAppStrategy{NeedWaitingForConfirm: ptr.To(true)}}},
		Window: &cafev1alpha1.ReleaseWindow{End: ptr.To(metav1.NewTime(end))},
	}}
	requesterClient := kubeconfigClient(t, requester)
	g.Expect(requesterClient.Create(ctx, order)).To(Succeed())
	cli(approver, "release", "approve", "closing")
	cli(operator, "release", "start", "closing")
	waitForOrder(ctx, g, ns, "closing", func(o *cafev1alpha1.ReleaseOrder) bool {
		l := o.Status.AppStatus("late")
		return l != nil && l.WaitingSince != nil
	})
	g.Expect(time.Now()).To(BeTemporally("<", end), "the app must wait before the window closes")
	paused := waitForOrder(ctx, g, ns, "closing", phaseIs(cafev1alpha1.OrderPaused))
	g.Expect(paused.Status.Message).To(ContainSubstring("the window closed"))
	g.Expect(paused.Status.AppStatus("late").Held).To(BeTrue())
	cd := &cafev1alpha1.CafeDeployment{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "late"}, cd)).To(Succeed())
		g.Expect(cd.Spec.Strategy.Pause).To(BeTrue())
	}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
	out, err := cafeCLI(ctx, t, ns, operator, "release", "resume", "closing")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("window closed"))
	cli(operator, "release", "rollback", "closing")
	rolled := waitForOrder(ctx, g, ns, "closing", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(rolled.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack), "%s %+v", rolled.Status.Message, rolled.Status.Apps)
	// The app's own strategy came back.
	app := &cafev1alpha1.CafeAppService{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "late"}, app)).To(Succeed())
		g.Expect(app.Spec.Workload.Strategy.NeedWaitingForConfirm).To(BeNil())
	}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
}

// controllerProcess runs CAFE's controllers as a real OS process, `cafe
// manager` built from this tree, instead of in the test process. Meanwhile
// the in-process manager only serves the admission webhooks (identity
// stamping and validation keep working while the child is dead), and never
// runs a controller: exactly one set of controllers runs at any time, and
// none between a kill and the next start.
type controllerProcess struct {
	t     *testing.T
	bin   string
	args  []string
	proc  *managerproc.Process
	logs  []string
	kills int
}

// runControllersInChild hands CAFE's controllers to a child process until
// the test ends, then takes them back in-process for the next tests. The
// child runs the gateway traffic provider against the control plane's
// gateway, as the in-process manager does.
func runControllersInChild(ctx context.Context, t *testing.T, g Gomega) *controllerProcess {
	return runControllersInChildWith(ctx, t, g, "--gateway-api-url="+env.ControlPlane.GatewayAdminURL())
}

// runControllersInChildWith is runControllersInChild with the child's
// manager flags.
func runControllersInChildWith(ctx context.Context, t *testing.T, g Gomega, args ...string) *controllerProcess {
	t.Helper()
	bin := cafeBinary(t)
	g.Expect(env.StopControllers(ctx)).To(Succeed())
	c := &controllerProcess{t: t, bin: bin, args: args}
	t.Cleanup(func() {
		if c.proc != nil {
			c.proc.Stop()
		}
		if t.Failed() {
			c.dumpLogs()
		}
		if err := env.StartControllers(context.Background()); err != nil {
			t.Errorf("taking CAFE's controllers back in-process: %v", err)
		}
	})
	c.start(ctx, g)
	return c
}

func (c *controllerProcess) start(ctx context.Context, g Gomega) {
	p, err := managerproc.Start(ctx, managerproc.Options{
		Binary:       c.bin,
		ControlPlane: env.ControlPlane,
		Args:         c.args,
		LogPath:      filepath.Join(env.ControlPlane.StateDir(), "logs", fmt.Sprintf("cafe-manager-%d.log", len(c.logs)+1)),
	})
	g.Expect(err).NotTo(HaveOccurred())
	c.proc = p
	c.logs = append(c.logs, p.LogPath())
}

// kill SIGKILLs the child — it must still be running: an exit of its own is
// a crash the test reports — waits until it is reaped, runs whileDead (no
// CAFE controller runs then) and starts the next.
func (c *controllerProcess) kill(ctx context.Context, g Gomega, why string, whileDead ...func()) {
	c.t.Helper()
	pid := c.proc.Pid()
	g.Expect(c.proc.Kill()).To(Succeed())
	c.kills++
	c.t.Logf("kill %d: SIGKILL to cafe manager pid %d %s", c.kills, pid, why)
	for _, f := range whileDead {
		f()
	}
	c.start(ctx, g)
}

// dumpLogs prints each child's errors and last lines.
func (c *controllerProcess) dumpLogs() {
	for _, path := range c.logs {
		data, err := os.ReadFile(path)
		if err != nil {
			c.t.Logf("%s: %v", path, err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		var keep []string
		for i, l := range lines {
			if i >= len(lines)-3 || strings.Contains(l, `"level":"error"`) || strings.Contains(l, "panic") {
				keep = append(keep, l)
			}
		}
		c.t.Logf("errors and last lines of %s:\n%s", path, strings.Join(keep[max(0, len(keep)-20):], "\n"))
	}
}

// publishHistory records, from the watch stream, every value
// spec.publishedRevision of each CafeAppService of a namespace takes.
type publishHistory struct {
	mu   sync.Mutex
	seen map[string][]string
	err  error
}

func recordPublishes(ctx context.Context, t *testing.T, g Gomega, ns string) *publishHistory {
	list := &cafev1alpha1.CafeAppServiceList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	h := &publishHistory{seen: map[string][]string{}}
	for _, a := range list.Items {
		h.add(a.Name, a.Spec.PublishedRevision)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
			return k8sClient.Watch(ctx, &cafev1alpha1.CafeAppServiceList{}, &client.ListOptions{Namespace: ns, Raw: &raw})
		},
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			if app, ok := ev.Object.(*cafev1alpha1.CafeAppService); ok {
				h.add(app.Name, app.Spec.PublishedRevision)
			} else if ev.Type == watch.Error {
				h.mu.Lock()
				h.err = fmt.Errorf("the CafeAppService watch failed: %v", apierrors.FromObject(ev.Object))
				h.mu.Unlock()
			}
		}
	}()
	return h
}

func (h *publishHistory) add(app, rev string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.seen[app]; len(s) == 0 || s[len(s)-1] != rev {
		h.seen[app] = append(s, rev)
	}
}

func (h *publishHistory) of(app string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen[app]), h.err
}

// killMoment is a point of an order's progress the controller can be
// killed at.
type killMoment struct {
	name    string
	reached func(*cafev1alpha1.ReleaseOrder) bool
}

// runMoments are the points of a running order of the apps: each app
// publishing, releasing, and after its first and second group.
func runMoments(apps []string) []killMoment {
	var out []killMoment
	for _, name := range apps {
		app := func(o *cafev1alpha1.ReleaseOrder) *cafev1alpha1.ReleaseOrderAppStatus {
			if s := o.Status.AppStatus(name); s != nil {
				return s
			}
			return &cafev1alpha1.ReleaseOrderAppStatus{}
		}
		past := func(phases ...cafev1alpha1.ReleaseOrderAppPhase) func(*cafev1alpha1.ReleaseOrder) bool {
			return func(o *cafev1alpha1.ReleaseOrder) bool { return slices.Contains(phases, app(o).Phase) }
		}
		groups := func(n int32) func(*cafev1alpha1.ReleaseOrder) bool {
			return func(o *cafev1alpha1.ReleaseOrder) bool {
				return app(o).GroupsDone >= n || app(o).Phase == cafev1alpha1.AppSucceeded
			}
		}
		out = append(out,
			killMoment{name + " publishing", past(cafev1alpha1.AppPublishing, cafev1alpha1.AppReleasing, cafev1alpha1.AppSucceeded)},
			killMoment{name + " releasing", past(cafev1alpha1.AppReleasing, cafev1alpha1.AppSucceeded)},
			killMoment{name + " group 1 done", groups(1)},
			killMoment{name + " group 2 done", groups(2)},
		)
	}
	return out
}

// CAFE's controller process (`cafe manager`, a real child process) gets
// SIGKILL at random moments of an order — right after it is created, after
// the approval and the start were submitted, and at 4 to 6 random points
// of the release (an app publishing, releasing, between its groups), each
// after a random delay — and is started again each time; the approval is
// submitted while no controller runs and admission stamps it. The order still
// ends Succeeded; every state change is in the trail exactly once; the
// watch streams show every app published once and every pod updated once,
// losslessly and above the water level; the trail verifies, and an entry
// edited by hand is named by `cafe audit verify`.
func TestReleaseOrderSurvivesControllerKills(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, k8sClient)
	apps := []string{"k1", "k2", "k3"}
	for _, name := range apps {
		orderApp(ctx, g, ns, name, nil)
	}
	requester, _ := releaseUser(t, ctx, ns, "kim", "requester")
	approver, _ := releaseUser(t, ctx, ns, "kai", "approver")
	operator, _ := releaseUser(t, ctx, ns, "kit", "operator")
	auditor, _ := releaseUser(t, ctx, ns, "kay", "auditor")
	cli := func(kubeconfig string, args ...string) {
		out, err := cafeCLI(ctx, t, ns, kubeconfig, args...)
		g.Expect(err).NotTo(HaveOccurred(), out)
	}

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CAFE_E2E_KILL_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		g.Expect(err).NotTo(HaveOccurred())
	}
	t.Logf("kill schedule seed %d (CAFE_E2E_KILL_SEED=%d replays the schedule; the timing of the controller's work varies)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	moments := runMoments(apps)
	for keep := 4 + rng.IntN(3); len(moments) > keep; {
		k := rng.IntN(len(moments))
		moments = slices.Delete(moments, k, k+1)
	}

	pods := framework.Record(ctx, t, g, env.Admin, ns)
	publishes := recordPublishes(ctx, t, g, ns)
	podsBefore := map[string]types.UID{}
	for _, name := range apps {
		for _, p := range listPods(ctx, g, ns, map[string]string{cafev1alpha1.AppLabel: name}) {
			podsBefore[p.Name] = p.UID
		}
	}
	g.Expect(podsBefore).To(HaveLen(9))

	ctl := runControllersInChild(ctx, t, g)
	// killAfterJitter kills the controller at a random instant of the next
	// second: where the kill lands in the controller's work is random. This
	// is the fault's timing, not a wait for anything to be ready.
	killAfterJitter := func(why string, whileDead ...func()) {
		d := time.Duration(rng.Int64N(int64(time.Second)))
		time.Sleep(d)
		ctl.kill(ctx, g, fmt.Sprintf("%s (+%v)", why, d.Round(time.Millisecond)), whileDead...)
	}

	cli(requester, "release", "create", "steady", "--title", "steady", "--app", "k1=r2", "--app", "k2=r2", "--app", "k3=r2",
		"--depends-on", "k2=k1", "--depends-on", "k3=k2")
	// While no controller runs, admission still works: the approval is
	// admitted and stamped with the approver's identity.
	killAfterJitter("after the order was created", func() {
		cli(approver, "release", "approve", "steady", "--no-wait")
		actions := &cafev1alpha1.ReleaseActionList{}
		g.Expect(k8sClient.List(ctx, actions, client.InNamespace(ns))).To(Succeed())
		g.Expect(actions.Items).To(HaveLen(1))
		g.Expect(actions.Items[0].Spec.Action).To(Equal(cafev1alpha1.ActionApprove))
		g.Expect(actions.Items[0].Spec.Actor).To(Equal("kai"))
		g.Expect(actions.Items[0].Spec.ActorGroups).To(ContainElement("release-approvers"))
	})
	killAfterJitter("after the approval was submitted")
	waitForOrder(ctx, g, ns, "steady", phaseIs(cafev1alpha1.OrderApproved))
	cli(operator, "release", "start", "steady", "--no-wait")
	killAfterJitter("after the start was submitted")
	for _, m := range moments {
		o := waitForOrder(ctx, g, ns, "steady", func(o *cafev1alpha1.ReleaseOrder) bool { return m.reached(o) || o.Status.Phase.IsFinished() })
		if o.Status.Phase.IsFinished() {
			// The last app's last moment can come in the write that ends the order.
			t.Logf("no kill after %s: the order finished", m.name)
			break
		}
		killAfterJitter("after " + m.name)
	}
	final := waitForOrder(ctx, g, ns, "steady", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(ctl.kills).To(BeNumerically(">=", 5))
	g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderSucceeded), "%s %+v", final.Status.Message, final.Status.Apps)

	// Every state change and action in the trail exactly once: nothing
	// lost, nothing duplicated.
	count := map[string]int{}
	for _, e := range final.Status.Audit {
		count[e.Action+" "+e.Target+" "+e.Before+">"+e.After]++
	}
	want := map[string]int{
		"Create releaseorder/steady >PendingApproval":             1,
		"Approve releaseorder/steady PendingApproval>Approved":    1,
		"OrderPhase releaseorder/steady PendingApproval>Approved": 1,
		"Start releaseorder/steady Approved>Scheduled":            1,
		"OrderPhase releaseorder/steady Approved>Scheduled":       1,
		"OrderPhase releaseorder/steady Scheduled>Running":        1,
		"OrderPhase releaseorder/steady Running>Succeeded":        1,
	}
	for _, name := range apps {
		for _, tr := range []string{"Pending>Publishing", "Publishing>Releasing", "Releasing>Succeeded"} {
			want["AppPhase app/"+name+" "+tr] = 1
		}
		// The pods the release left running, listed once.
		want["Instances app/"+name+" >"+name+"-r2"] = 1
		rev := &cafev1alpha1.AppRevision{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-r2"}, rev)).To(Succeed())
		g.Expect(rev.Status.Outcome).To(Equal(cafev1alpha1.ReleaseOutcomeSucceeded))
		g.Expect(images(ctx, g, ns, name)).To(Equal([]string{"example.com/" + name + ":v2", "example.com/" + name + ":v2", "example.com/" + name + ":v2"}))
	}
	g.Expect(count).To(Equal(want))

	// No app released twice: each app's published revision went r1 → r2
	// once, and each pod (the same pods: in-place) changed its spec once,
	// never while it served traffic, with at most one pod of an app down.
	for _, name := range apps {
		g.Eventually(func(g Gomega) {
			seen, err := publishes.of(name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(seen).To(Equal([]string{name + "-r1", name + "-r2"}), "published revisions of %s, from the watch", name)
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
	}
	g.Expect(pods.WaitForSync(ctx)).To(Succeed())
	events := pods.Events()
	for _, name := range apps {
		for _, p := range listPods(ctx, g, ns, map[string]string{cafev1alpha1.AppLabel: name}) {
			g.Expect(podsBefore).To(HaveKeyWithValue(p.Name, p.UID), "pod %s was replaced", p.Name)
			g.Expect(watchrec.CountPodSpecChanges(events, p.Name)).To(Equal(1), "spec changes of pod %s", p.Name)
		}
		g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(map[string]string{cafev1alpha1.AppLabel: name}), 2))).To(BeEmpty())
	}
	g.Expect(watchrec.Report(watchrec.CheckLossless(events))).To(BeEmpty())

	// The trail verifies; one entry edited by hand is named.
	out, err := cafeCLI(ctx, t, ns, auditor, "audit", "verify", "steady")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring(fmt.Sprintf("OK   ReleaseOrder %s/steady: %d entries", ns, len(final.Status.Audit))))
	i := rng.IntN(len(final.Status.Audit))
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		o := &cafev1alpha1.ReleaseOrder{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(final), o); err != nil {
			return err
		}
		o.Status.Audit[i].Reason += " (edited)"
		return k8sClient.Status().Update(ctx, o)
	})).To(Succeed())
	t.Logf("edited entry %d of %d (%s %s)", i+1, len(final.Status.Audit), final.Status.Audit[i].Action, final.Status.Audit[i].Target)
	out, err = cafeCLI(ctx, t, ns, auditor, "audit", "verify", "steady")
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring(fmt.Sprintf("FAIL ReleaseOrder %s/steady: entry %d (seq %d): its content does not match its hash: the entry was altered", ns, i+1, final.Status.Audit[i].Seq)))
}
