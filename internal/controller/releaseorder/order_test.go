package releaseorder_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/internal/controller/releaseorder"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
)

// emptyApp is an app without pods: its releases complete as soon as the
// controllers have seen them, so the order's publish path runs without a
// kubelet.
func emptyApp(ns, name string) *cafev1alpha1.CafeAppService {
	return &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":v1"}}}},
			Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](0), Topology: cafev1alpha1.Topology{Values: []string{"zone-a"}}},
		},
	}
}

func getApp(ctx context.Context, g Gomega, ns, name string) *cafev1alpha1.CafeAppService {
	app := &cafev1alpha1.CafeAppService{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, app)).To(Succeed())
	return app
}

// appAtR2 creates an app, publishes r1 (released), records r2.
func appAtR2(ctx context.Context, g *WithT, ns, name string) {
	app := emptyApp(ns, name)
	g.Expect(suite.Client.Create(ctx, app)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(getApp(ctx, g, ns, name).Status.LatestRevision).To(Equal(name + "-r1")) }).Should(Succeed())
	g.Eventually(func() error {
		a := getApp(ctx, g, ns, name)
		a.Spec.PublishedRevision = name + "-r1"
		return suite.Client.Update(ctx, a)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getApp(ctx, g, ns, name).Status.LastSuccessfulRevision).To(Equal(name + "-r1"))
	}).Should(Succeed())
	g.Eventually(func() error {
		a := getApp(ctx, g, ns, name)
		a.Spec.Template.Spec.Containers[0].Image = "example.com/" + name + ":v2"
		return suite.Client.Update(ctx, a)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(getApp(ctx, g, ns, name).Status.LatestRevision).To(Equal(name + "-r2")) }).Should(Succeed())
}

func getOrder(ctx context.Context, g Gomega, ns, name string) *cafev1alpha1.ReleaseOrder {
	o := &cafev1alpha1.ReleaseOrder{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o)).To(Succeed())
	return o
}

var actionSeq int

// act creates an action as the admission webhook would leave it.
func act(ctx context.Context, g *WithT, ns, order, actor string, a cafev1alpha1.ReleaseActionType) string {
	actionSeq++
	name := fmt.Sprintf("%s-%s-%d", order, a.Verb(), actionSeq)
	createAction(ctx, g, sealAction(ctx, g, &cafev1alpha1.ReleaseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       cafev1alpha1.ReleaseActionSpec{Order: order, Action: a, Actor: actor},
	}))
	return name
}

func result(ctx context.Context, g *WithT, ns, order, action string) cafev1alpha1.ReleaseActionRecord {
	var rec cafev1alpha1.ReleaseActionRecord
	g.Eventually(func(g Gomega) {
		found := false
		for _, r := range getOrder(ctx, g, ns, order).Status.Actions {
			if r.Name == action {
				rec, found = r, true
			}
		}
		g.Expect(found).To(BeTrue(), "action %s not processed", action)
	}).Should(Succeed())
	return rec
}

func TestOrderReleasesAppsInOrderAndRollsBackInReverseWithAVerifiableTrail(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "a")
	appAtR2(ctx, g, ns, "b")
	// c does not exist: its start fails, and RollbackAll returns b, then a.
	order := &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weekly"},
		Spec: cafev1alpha1.ReleaseOrderSpec{
			Title: "weekly", RequestedBy: "alice", FailurePolicy: cafev1alpha1.FailureRollbackAll,
			Approval: cafev1alpha1.ReleaseApproval{Required: ptr.To[int32](2)},
			Apps: []cafev1alpha1.ReleaseOrderApp{
				{Name: "a", Revision: "a-r2"},
				{Name: "b", Revision: "b-r2", DependsOn: []string{"a"}},
				{Name: "c", Revision: "c-r2", DependsOn: []string{"b"}},
			},
		},
	}
	createOrder(ctx, g, order)
	g.Eventually(func(g Gomega) {
		g.Expect(getOrder(ctx, g, ns, "weekly").Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval))
	}).Should(Succeed())

	g.Expect(result(ctx, g, ns, "weekly", act(ctx, g, ns, "weekly", "alice", cafev1alpha1.ActionApprove)).Message).To(ContainSubstring("cannot approve"))
	g.Expect(result(ctx, g, ns, "weekly", act(ctx, g, ns, "weekly", "bob", cafev1alpha1.ActionApprove)).Result).To(Equal(cafev1alpha1.ActionAccepted))
	g.Expect(result(ctx, g, ns, "weekly", act(ctx, g, ns, "weekly", "carol", cafev1alpha1.ActionApprove)).Result).To(Equal(cafev1alpha1.ActionAccepted))
	g.Expect(getOrder(ctx, g, ns, "weekly").Status.Phase).To(Equal(cafev1alpha1.OrderApproved))
	g.Expect(result(ctx, g, ns, "weekly", act(ctx, g, ns, "weekly", "dave", cafev1alpha1.ActionStart)).Result).To(Equal(cafev1alpha1.ActionAccepted))

	var final *cafev1alpha1.ReleaseOrder
	g.Eventually(func(g Gomega) {
		final = getOrder(ctx, g, ns, "weekly")
		g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack), "status %+v", final.Status.Apps)
	}, "60s").Should(Succeed())
	g.Expect(getApp(ctx, g, ns, "a").Spec.PublishedRevision).To(Equal("a-r1"))
	g.Expect(getApp(ctx, g, ns, "b").Spec.PublishedRevision).To(Equal("b-r1"))
	a, b := final.Status.AppStatus("a"), final.Status.AppStatus("b")
	g.Expect(a.FromRevision).To(Equal("a-r1"))
	// Released in dependency order, rolled back in reverse.
	g.Expect(b.StartedAt.Time).NotTo(BeTemporally("<", a.FinishedAt.Time))
	g.Expect(a.RollbackStartedAt.Time).NotTo(BeTemporally("<", b.RolledBackAt.Time))
	g.Expect(final.Status.AppStatus("c").Phase).To(Equal(cafev1alpha1.AppFailed))

	// The trail verifies with the public key CAFE published; each action
	// and state change is in it once.
	bundle, err := audit.PublishedKeys(ctx, suite.Client, install.Namespace)
	g.Expect(err).NotTo(HaveOccurred())
	_, p := audit.Verify(audit.OrderRecord(final), bundle.Ring())
	g.Expect(p).To(BeNil())
	seen := map[string]int{}
	for _, e := range final.Status.Audit {
		seen[e.Action+" "+e.Target+" "+e.After]++
	}
	g.Expect(seen).To(HaveKeyWithValue("AppPhase app/a Succeeded", 1))
	g.Expect(seen).To(HaveKeyWithValue("AppPhase app/b RolledBack", 1))
	g.Expect(seen).To(HaveKeyWithValue("OrderPhase releaseorder/weekly RolledBack", 1))

	// Editing one entry by hand is detected and named.
	tampered := final.DeepCopy()
	tampered.Status.Audit[3].Actor = "mallory"
	g.Expect(suite.Client.Status().Update(ctx, tampered)).To(Succeed())
	_, p = audit.Verify(audit.OrderRecord(getOrder(ctx, g, ns, "weekly")), bundle.Ring())
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Seq).To(Equal(int64(4)))
	g.Expect(p.Reason).To(ContainSubstring("altered"))

	// Revisions are held only while the order is open.
	rev := &cafev1alpha1.AppRevision{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "a-r2"}, rev)).To(Succeed())
	g.Expect(rev.Annotations).NotTo(HaveKey(final.HoldAnnotation()))
}

func TestOrderActionsInTheWrongPhaseAreRefusedAndProcessedOnce(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "solo")
	order := &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "solo"},
		Spec:       cafev1alpha1.ReleaseOrderSpec{Title: "solo", RequestedBy: "alice", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "solo", Revision: "solo-r2"}}},
	}
	createOrder(ctx, g, order)
	rec := result(ctx, g, ns, "solo", act(ctx, g, ns, "solo", "bob", cafev1alpha1.ActionStart))
	g.Expect(rec.Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(rec.Message).To(ContainSubstring("Start is not allowed while the order is PendingApproval"))
	result(ctx, g, ns, "solo", act(ctx, g, ns, "solo", "bob", cafev1alpha1.ActionApprove))
	result(ctx, g, ns, "solo", act(ctx, g, ns, "solo", "bob", cafev1alpha1.ActionStart))
	g.Eventually(func(g Gomega) {
		g.Expect(getOrder(ctx, g, ns, "solo").Status.Phase).To(Equal(cafev1alpha1.OrderSucceeded))
	}, "60s").Should(Succeed())
	o := getOrder(ctx, g, ns, "solo")
	g.Expect(o.Status.Actions).To(HaveLen(3))
	g.Expect(getApp(ctx, g, ns, "solo").Spec.PublishedRevision).To(Equal("solo-r2"))
	// Nothing changes any more: the record is stable.
	g.Consistently(func(g Gomega) {
		g.Expect(getOrder(ctx, g, ns, "solo").Status.Audit).To(HaveLen(len(o.Status.Audit)))
	}).Should(Succeed())
}

// Finding 4: the controller kept chaining onto whatever trail it found, so
// a shortened or forged trail became CAFE's. Now it chains only onto a
// trail that leads to a head signed with a published key; otherwise the
// order stops, and its AuditIntact condition and a Warning event say why.
func TestSecurityF4_ControllerDoesNotChainOntoATamperedTrail(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "solo")
	order := &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "solo"},
		Spec:       cafev1alpha1.ReleaseOrderSpec{Title: "solo", RequestedBy: "alice", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "solo", Revision: "solo-r2"}}},
	}
	g.Expect(suite.Client.Create(ctx, order)).To(Succeed())
	var o *cafev1alpha1.ReleaseOrder
	g.Eventually(func(g Gomega) {
		o = getOrder(ctx, g, ns, "solo")
		g.Expect(o.Status.AuditHead).NotTo(BeNil())
		g.Expect(o.Status.AuditHead.Count).To(BeEquivalentTo(1))
	}).Should(Succeed())

	// A status patcher appends an approval of their own, with a head of
	// their own: the API server admits it (the trail only grew).
	_, key, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	mallory := audit.Signer{Key: key}
	subject := audit.SubjectOf(o)
	o.Status.Audit = mallory.Append(subject, o.Status.Audit, cafev1alpha1.AuditEntry{Time: metav1.NowMicro(), Actor: "carol", Action: "Approve"})
	o.Status.AuditHead = mallory.Head(subject, o.Status.Audit)
	g.Expect(suite.Client.Status().Update(ctx, o)).To(Succeed())

	approval := act(ctx, g, ns, "solo", "bob", cafev1alpha1.ActionApprove)
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getOrder(ctx, g, ns, "solo").Status.Conditions, cafev1alpha1.OrderAuditIntactCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(cafev1alpha1.AuditReasonTrailTampered))
		g.Expect(c.Message).To(ContainSubstring("the head is signed by key %q, which is not among the trusted keys", mallory.ID()))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		events := &eventsv1.EventList{}
		g.Expect(suite.Client.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		var reasons []string
		for _, e := range events.Items {
			if e.Regarding.Name == "solo" && e.Type == corev1.EventTypeWarning {
				reasons = append(reasons, e.Reason)
			}
		}
		g.Expect(reasons).To(ContainElement(cafev1alpha1.AuditReasonTrailTampered))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		now := getOrder(ctx, g, ns, "solo")
		g.Expect(now.Status.Audit).To(HaveLen(2), "nothing is chained onto the forged entry")
		g.Expect(now.Status.Actions).NotTo(ContainElement(HaveField("Name", approval)), "bob's approval waits")
	}).Should(Succeed())
}

// Finding 4: a replaced key Secret either was adopted silently (a new key
// was created when the Secret was gone) or stalled every order at the next
// start with nothing but a log line. Now the controller refuses to sign
// with a key that is not the published current one, and each order it
// would change says so in its AuditIntact condition and a Warning event.
// A second controller is run by hand here, with its key in a namespace of
// the test's own, so the suite's controller keeps its key.
func TestSecurityF4_ReplacedKeyDetected(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	keyNS := framework.CreateNamespace(t, suite.Client)
	original, _, err := audit.EnsureSigner(ctx, suite.Client, keyNS)
	g.Expect(err).NotTo(HaveOccurred())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: keyNS, Name: audit.SigningKeySecret}}
	g.Expect(suite.Client.Delete(ctx, secret)).To(Succeed())
	g.Expect(suite.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: keyNS, Name: audit.SigningKeySecret},
		Data:       map[string][]byte{"ed25519.seed": []byte("0123456789abcdef0123456789abcdef")},
	})).To(Succeed())

	appAtR2(ctx, g, ns, "solo")
	order := &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "solo"},
		Spec:       cafev1alpha1.ReleaseOrderSpec{Title: "solo", RequestedBy: "alice", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "solo", Revision: "solo-r2"}}},
	}
	g.Expect(suite.Client.Create(ctx, order)).To(Succeed())
	var entries int
	g.Eventually(func(g Gomega) {
		entries = len(getOrder(ctx, g, ns, "solo").Status.Audit)
		g.Expect(entries).To(BeNumerically(">", 0))
	}).Should(Succeed())

	recorder := events.NewFakeRecorder(100)
	restarted := &releaseorder.Reconciler{Client: suite.Client, APIReader: suite.Client, Recorder: recorder, Namespace: keyNS, Now: time.Now}
	var event string
	g.Eventually(func(g Gomega) {
		res, err := restarted.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(order)})
		g.Expect(err).NotTo(HaveOccurred(), "a replaced key is not a failure to retry blindly")
		g.Expect(res.RequeueAfter).To(BeNumerically(">", 0), "the key is checked again")
		g.Expect(recorder.Events).To(Receive(&event))
	}).Should(Succeed())
	g.Expect(event).To(HavePrefix("Warning " + cafev1alpha1.AuditReasonSigningKeyNotPublished))
	g.Expect(event).To(ContainSubstring("publishes " + original.ID() + " as current (it was never published): the Secret was replaced"))
	g.Expect(getOrder(ctx, g, ns, "solo").Status.Audit).To(HaveLen(entries), "it signed nothing")
	cm := &corev1.ConfigMap{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: keyNS, Name: audit.PublicKeyConfig}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveLen(1), "the replaced key was not published")
}
