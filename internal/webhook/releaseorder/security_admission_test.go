package releaseorder_test

import (
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
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/internal/seal"
)

// editor is a user the API server authenticates, who may edit
// CafeDeployments and CafeAppServices in ns (a namespace editor).
func editor(t *testing.T, g Gomega, ns, name string) client.Client {
	t.Helper()
	ctx := t.Context()
	u, err := suite.Env.AddUser(envtest.User{Name: name}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(suite.Admin.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cafe-editor"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{cafev1alpha1.GroupVersion.Group}, Resources: []string{"cafedeployments", "cafeappservices"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch"},
	}}})).To(Succeed())
	g.Expect(suite.Admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cafe-editor-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "cafe-editor"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
	})).To(Succeed())
	c, err := client.New(u.Config(), client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// F9: a fast-release request and a change of the water level or of the
// confirmations are recorded with the authenticated user who made them;
// a fast-release request that would skip the confirmation a release waits
// for is refused (the review's probe: kubectl annotate cd X
// cafe.io/fast-release=<status.updateRevision> while WaitingForConfirm).
func TestSecurityF9_FastReleaseStampedAndRecorded(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	dev := editor(t, g, ns, "dev")

	labels := map[string]string{"app": "pay"}
	cd := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pay"}, Spec: cafev1alpha1.CafeDeploymentSpec{
		Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "pay:v1"}}}},
		Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b"}},
		Strategy: cafev1alpha1.CafeDeploymentStrategy{BatchSize: ptr.To(intstr.FromInt32(1)), NeedWaitingForConfirm: ptr.To(true)},
	}}
	g.Expect(dev.Create(ctx, cd)).To(Succeed())
	// The release waits for a confirmation of group 1 (the controller's
	// status, played by the suite.Admin).
	cd.Status.UpdateRevision = "rev-2"
	cd.Status.Release = cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseWaitingForConfirm, CurrentGroup: ptr.To[int32](1), TotalGroups: ptr.To[int32](4)}
	g.Expect(suite.Admin.Status().Update(ctx, cd)).To(Succeed())

	patch := func(c client.Client, obj client.Object, f func()) error {
		p := client.MergeFrom(obj.DeepCopyObject().(client.Object))
		f()
		return c.Patch(ctx, obj, p)
	}
	// The probe: refused, naming the annotation and what to do instead.
	err := patch(dev, cd, func() { metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, "rev-2") })
	g.Expect(err).To(MatchError(ContainSubstring("metadata.annotations[cafe.io/fast-release]: the release of rev-2 waits for a confirmation of group 1")))
	g.Expect(suite.Admin.Get(ctx, client.ObjectKeyFromObject(cd), cd)).To(Succeed())
	g.Expect(cd.Annotations).NotTo(HaveKey(cafev1alpha1.FastReleaseAnnotation))

	// Water level and confirmations: stamped with the authenticated user.
	g.Expect(patch(dev, cd, func() {
		cd.Spec.Strategy.MinAvailable = ptr.To(intstr.FromString("50%"))
		cd.Spec.Strategy.NeedWaitingForConfirm = ptr.To(false)
	})).To(Succeed())
	g.Expect(cd.Annotations).To(HaveKeyWithValue(cafev1alpha1.StrategyChangedByAnnotation, "dev"))
	g.Expect(cd.Annotations).To(HaveKey(cafev1alpha1.StrategyChangedAtAnnotation))
	g.Expect(patch(dev, cd, func() { cd.Annotations[cafev1alpha1.StrategyChangedByAnnotation] = "someone-else" })).
		To(MatchError(ContainSubstring("metadata.annotations[cafe.io/strategy-changed-by]: set by CAFE from the authenticated user")))

	// Once the release no longer waits, a fast release may be asked for,
	// and who asked is recorded.
	cd.Status.Release.Phase = cafev1alpha1.ReleasePhaseProgressing
	g.Expect(suite.Admin.Status().Update(ctx, cd)).To(Succeed())
	g.Expect(patch(dev, cd, func() { metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, "rev-2") })).To(Succeed())
	g.Expect(cd.Annotations).To(HaveKeyWithValue(cafev1alpha1.FastReleaseByAnnotation, "dev"))

	// On an app, a fast release comes only with the publish it is about;
	// strategy changes are stamped the same way.
	app := &cafev1alpha1.CafeAppService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}, Spec: cafev1alpha1.CafeAppServiceSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop:v1"}}}},
		Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](4), Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b"}}},
	}}
	g.Expect(dev.Create(ctx, app)).To(Succeed())
	err = patch(dev, app, func() { metav1.SetMetaDataAnnotation(&app.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, "shop-r1") })
	g.Expect(err).To(MatchError(ContainSubstring("metadata.annotations[cafe.io/fast-release]: a fast release is asked for with the publish it is about")))
	g.Expect(patch(dev, app, func() { app.Spec.Workload.Strategy.MaxUnavailable = ptr.To(intstr.FromInt32(2)) })).To(Succeed())
	g.Expect(app.Annotations).To(HaveKeyWithValue(cafev1alpha1.StrategyChangedByAnnotation, "dev"))
}

// F5: what the webhook stamps verifies with the key CAFE keeps: the seal
// covers the spec as the API server stores it (defaults applied).
func TestSecurityF5_WebhookSealsWhatTheControllerVerifies(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	appWithRevisions(ctx, g, ns, "a", 2)
	alice := person(t, g, ns, "alice", nil, "requester")
	bob := person(t, g, ns, "bob", nil, "approver")
	o := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sealed"}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title: "sealed", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "a", Revision: "a-r2"}},
	}}
	g.Expect(alice.Create(ctx, o)).To(Succeed())
	a := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "sealed-approve-"},
		Spec: cafev1alpha1.ReleaseActionSpec{Order: "sealed", Action: cafev1alpha1.ActionApprove, Comment: "ok"}}
	g.Expect(bob.Create(ctx, a)).To(Succeed())

	key, err := seal.Ensure(ctx, suite.Admin, install.Namespace)
	g.Expect(err).NotTo(HaveOccurred())
	stored := &cafev1alpha1.ReleaseOrder{}
	g.Expect(suite.Admin.Get(ctx, client.ObjectKeyFromObject(o), stored)).To(Succeed())
	g.Expect(key.VerifyOrder(ns, stored.Spec)).To(Succeed())
	storedAction := &cafev1alpha1.ReleaseAction{}
	g.Expect(suite.Admin.Get(ctx, client.ObjectKeyFromObject(a), storedAction)).To(Succeed())
	g.Expect(storedAction.Spec.AdmittedAt).NotTo(BeNil())
	g.Expect(key.VerifyAction(ns, storedAction.Spec)).To(Succeed())
	// A client cannot bring its own seal.
	forged := &cafev1alpha1.ReleaseAction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "forged-"},
		Spec: cafev1alpha1.ReleaseActionSpec{Order: "sealed", Action: cafev1alpha1.ActionApprove, Seal: storedAction.Spec.Seal}}
	g.Expect(bob.Create(ctx, forged)).To(MatchError(ContainSubstring("spec.seal: set by CAFE's admission webhook")))
}
