package releaseorder_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/internal/install"
)

func soloOrder(ns, name, app string) *cafev1alpha1.ReleaseOrder {
	return &cafev1alpha1.ReleaseOrder{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       cafev1alpha1.ReleaseOrderSpec{Title: name, RequestedBy: "alice", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: app, Revision: app + "-r2"}}},
	}
}

func waitPhase(ctx context.Context, g *WithT, ns, name string, want cafev1alpha1.ReleaseOrderPhase) {
	g.Eventually(func(g Gomega) { g.Expect(getOrder(ctx, g, ns, name).Status.Phase).To(Equal(want)) }, "60s").Should(Succeed())
}

// F5: this suite runs no webhook, like `cafe manager --webhook-port 0`
// after `kubectl apply -k config/crd`. Anyone who may create a
// ReleaseAction can write any actor into it; the controller must not take
// it.
func TestSecurityF5_ForgedActorRefusedWithoutWebhook(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "pay")
	createOrder(ctx, g, soloOrder(ns, "alices", "pay"))
	waitPhase(ctx, g, ns, "alices", cafev1alpha1.OrderPendingApproval)

	// alice forges bob's approval of her own order.
	forged := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forged-approve"},
		Spec: cafev1alpha1.ReleaseActionSpec{Order: "alices", Action: cafev1alpha1.ActionApprove, Actor: "bob"}}
	g.Expect(suite.Client.Create(ctx, forged)).To(Succeed())
	rec := result(ctx, g, ns, "alices", "forged-approve")
	g.Expect(rec.Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(rec.Message).To(ContainSubstring("not sealed by CAFE's admission webhook"))
	g.Expect(rec.Actor).To(BeEmpty(), "a name nobody authenticated is not recorded as the actor")
	o := getOrder(ctx, g, ns, "alices")
	g.Expect(o.Status.Phase).To(Equal(cafev1alpha1.OrderPendingApproval))
	g.Expect(o.Status.Approvals).To(BeEmpty())

	// A seal copied from another action does not cover a changed actor.
	genuine := sealAction(ctx, g, &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "copied-seal"},
		Spec: cafev1alpha1.ReleaseActionSpec{Order: "alices", Action: cafev1alpha1.ActionApprove, Actor: "carol"}})
	genuine.Spec.Actor = "bob"
	g.Expect(suite.Client.Create(ctx, genuine)).To(Succeed())
	g.Expect(result(ctx, g, ns, "alices", "copied-seal").Message).To(ContainSubstring("not sealed by CAFE's admission webhook"))

	// An order whose requester nobody authenticated cannot be approved,
	// even by a genuine approver, and says why.
	appAtR2(ctx, g, ns, "shop")
	g.Expect(suite.Client.Create(ctx, soloOrder(ns, "forged-requester", "shop"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := findCondition(getOrder(ctx, g, ns, "forged-requester"), cafev1alpha1.OrderProgressingCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.OrderReasonIdentityUnverified))
		g.Expect(c.Message).To(ContainSubstring("not sealed by CAFE's admission webhook"))
	}, "60s").Should(Succeed())
	rec = result(ctx, g, ns, "forged-requester", act(ctx, g, ns, "forged-requester", "bob", cafev1alpha1.ActionApprove))
	g.Expect(rec.Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(rec.Message).To(ContainSubstring(`requester "alice" is not sealed`))
}

func findCondition(o *cafev1alpha1.ReleaseOrder, t string) *metav1.Condition {
	for i := range o.Status.Conditions {
		if o.Status.Conditions[i].Type == t {
			return &o.Status.Conditions[i]
		}
	}
	return nil
}

// F12: a ServiceAccount is no second pair of eyes, and no action is taken
// in CAFE's own name.
func TestSecurityF12_ServiceAccountCannotBeSecondEye(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "pay")
	createOrder(ctx, g, soloOrder(ns, "foureyes", "pay"))
	waitPhase(ctx, g, ns, "foureyes", cafev1alpha1.OrderPendingApproval)

	rec := result(ctx, g, ns, "foureyes", act(ctx, g, ns, "foureyes", "system:serviceaccount:"+ns+":deployer", cafev1alpha1.ActionApprove))
	g.Expect(rec.Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(rec.Message).To(ContainSubstring("is a ServiceAccount: four eyes needs people"))
	rec = result(ctx, g, ns, "foureyes", act(ctx, g, ns, "foureyes", cafev1alpha1.ControllerIdentity, cafev1alpha1.ActionApprove))
	g.Expect(rec.Result).To(Equal(cafev1alpha1.ActionRefused))
	g.Expect(rec.Message).To(ContainSubstring("CAFE's own identity"))
	g.Expect(getOrder(ctx, g, ns, "foureyes").Status.Approvals).To(BeEmpty())

	// A person approves; the controller's own entries carry its reserved
	// identity, which no approval or action above could take.
	result(ctx, g, ns, "foureyes", act(ctx, g, ns, "foureyes", "bob", cafev1alpha1.ActionApprove))
	waitPhase(ctx, g, ns, "foureyes", cafev1alpha1.OrderApproved)
	for _, e := range getOrder(ctx, g, ns, "foureyes").Status.Audit {
		if e.Action == "Approve" && !strings.HasPrefix(e.Reason, "refused") {
			g.Expect(e.Actor).To(Equal("bob"))
		}
		g.Expect(e.Actor).NotTo(Equal("cafe-controller"))
	}
}

// F3b: a burst of actions larger than the status can record leaves the
// order writable, and a Cancel still ends it.
func TestSecurityF3b_ActionBurstStaysOperable(t *testing.T) {
	_, g, ns := suite.Setup(t)
	// 600 admission round trips and 300 actions to process: more than the
	// suite's two minutes on a loaded machine, and bounded all the same.
	ctx, stop := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(stop)
	appAtR2(ctx, g, ns, "pay")
	createOrder(ctx, g, soloOrder(ns, "burst", "pay"))
	waitPhase(ctx, g, ns, "burst", cafev1alpha1.OrderPendingApproval)

	const burst = 300
	var wg sync.WaitGroup
	names := make(chan string, burst)
	for i := range burst {
		names <- fmt.Sprintf("burst-start-%03d", i)
	}
	close(names)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				createAction(ctx, g, sealAction(ctx, g, &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n},
					Spec: cafev1alpha1.ReleaseActionSpec{Order: "burst", Action: cafev1alpha1.ActionStart, Actor: "mallory"}}))
			}
		}()
	}
	wg.Wait()
	g.Eventually(func(g Gomega) {
		g.Expect(getOrder(ctx, g, ns, "burst").Status.ActionsProcessed()).To(Equal(burst))
	}, "6m").Should(Succeed())

	cancel := act(ctx, g, ns, "burst", "alice", cafev1alpha1.ActionCancel)
	g.Expect(result(ctx, g, ns, "burst", cancel).Result).To(Equal(cafev1alpha1.ActionAccepted))
	o := getOrder(ctx, g, ns, "burst")
	g.Expect(o.Status.Phase).To(Equal(cafev1alpha1.OrderCancelled))
	g.Expect(o.Status.ActionsProcessed()).To(Equal(burst + 1))
	g.Expect(len(o.Status.Actions)).To(BeNumerically("<=", 64), "status.actions keeps the latest records only")
	g.Expect(len(o.Status.Audit)).To(BeNumerically("<", 2048))
	// Every refused action beyond the audited ones says why.
	g.Expect(o.Status.Actions[len(o.Status.Actions)-2].Message).To(ContainSubstring("only a Cancel is taken now"))
	keys, err := audit.PublishedKeys(ctx, suite.Client, install.Namespace)
	g.Expect(err).NotTo(HaveOccurred())
	_, problem := audit.Verify(audit.OrderRecord(o), keys.Ring())
	g.Expect(problem).To(BeNil())
}

// F3a: an order name that fits no derived key is refused at creation;
// names that fit a label value but not the hold annotation's name part
// (51–63 characters) get a hash-shortened key, so the order holds its
// revisions and can be cancelled.
func TestSecurityF3a_LongOrderNameStaysOperable(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "pay")

	tooLong := soloOrder(ns, strings.Repeat("a", 70), "pay")
	err := suite.Client.Create(ctx, tooLong)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("metadata.name: at most 63 characters"))

	name := strings.Repeat("b", 58)
	createOrder(ctx, g, soloOrder(ns, name, "pay"))
	waitPhase(ctx, g, ns, name, cafev1alpha1.OrderPendingApproval)
	o := getOrder(ctx, g, ns, name)
	key := o.HoldAnnotation()
	g.Expect(len(strings.TrimPrefix(key, cafev1alpha1.HoldAnnotationPrefix))).To(BeNumerically("<=", 63))
	g.Eventually(func(g Gomega) {
		rev := &cafev1alpha1.AppRevision{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay-r2"}, rev)).To(Succeed())
		g.Expect(rev.Annotations).To(HaveKey(key), "the open order holds the revision it releases")
	}, "60s").Should(Succeed())

	g.Expect(result(ctx, g, ns, name, act(ctx, g, ns, name, "alice", cafev1alpha1.ActionCancel)).Result).To(Equal(cafev1alpha1.ActionAccepted))
	waitPhase(ctx, g, ns, name, cafev1alpha1.OrderCancelled)
	g.Eventually(func(g Gomega) {
		rev := &cafev1alpha1.AppRevision{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay-r2"}, rev)).To(Succeed())
		g.Expect(rev.Annotations).NotTo(HaveKey(key), "a finished order lets its revisions go")
	}, "60s").Should(Succeed())
}

// Caveat of the review: a Cancel and then an Approve made within one
// second are processed in the order they were made, even when one
// reconcile sees both (here: both exist before the order does, so its
// first reconcile takes them together) and their names sort the other way.
func TestSecurityCaveat_ActionsInOrder(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appAtR2(ctx, g, ns, "pay")
	for attempt := range 5 {
		order := fmt.Sprintf("order-%d", attempt)
		cancel := sealAction(ctx, g, &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("z-cancel-%d", attempt)},
			Spec: cafev1alpha1.ReleaseActionSpec{Order: order, Action: cafev1alpha1.ActionCancel, Actor: "alice"}})
		createAction(ctx, g, cancel)
		approve := sealAction(ctx, g, &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("a-approve-%d", attempt)},
			Spec: cafev1alpha1.ReleaseActionSpec{Order: order, Action: cafev1alpha1.ActionApprove, Actor: "bob"}})
		createAction(ctx, g, approve)
		o := soloOrder(ns, order, "pay")
		createOrder(ctx, g, o)
		if !cancel.CreationTimestamp.Equal(&approve.CreationTimestamp) || !o.CreationTimestamp.Equal(&cancel.CreationTimestamp) {
			// Not within one second: the old order would hold anyway.
			g.Expect(suite.Client.Delete(ctx, o)).To(Succeed())
			continue
		}
		g.Expect(result(ctx, g, ns, order, cancel.Name).Result).To(Equal(cafev1alpha1.ActionAccepted))
		rec := result(ctx, g, ns, order, approve.Name)
		g.Expect(rec.Result).To(Equal(cafev1alpha1.ActionRefused), "the approval came after the cancel")
		g.Expect(rec.Message).To(ContainSubstring("not allowed while the order is Cancelled"))
		final := getOrder(ctx, g, ns, order)
		g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderCancelled))
		g.Expect(final.Status.Approvals).To(BeEmpty())
		g.Expect(final.Status.Actions[0].Name).To(Equal(cancel.Name))
		return
	}
	t.Fatal("could not create two actions and an order within one second in 5 attempts")
}
