package cafeappservice_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// recorded is revision n of app as CAFE records it: the app's content and
// its hash, controlled by the app.
func recorded(app *cafev1alpha1.CafeAppService, n int64) *cafev1alpha1.AppRevision {
	return &cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: cafev1alpha1.AppRevisionName(app.Name, n),
			Labels: map[string]string{cafev1alpha1.AppLabel: app.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "CafeAppService",
				Name: app.Name, UID: app.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: cafev1alpha1.AppRevisionSpec{App: app.Name, Number: n, Hash: app.ContentHash(),
			Template: *app.Spec.Template.DeepCopy(), Service: *app.Spec.Service.DeepCopy(), Config: *app.Spec.Config.DeepCopy()},
	}
}

// Finding 10: a user who may create AppRevisions writes one with an owner
// reference to the app's UID (and an honest hash of its own content): it
// would pass ValidatePublish and order admission and run unapproved
// content. Only CAFE may record revisions, or re-point their owners; a
// revision whose content is not its hash (written while the webhook was
// not there) is refused at publish and at order admission.
func TestSecurityF10b_ForgedRevisionRefused(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, suite.Admin)
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pay"},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/pay:v1"}}}},
			Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](2), Topology: cafev1alpha1.Topology{Values: []string{"zone-a"}}},
		},
	}
	g.Expect(suite.Admin.Create(ctx, app)).To(Succeed())
	app.Default()
	g.Expect(suite.Admin.Create(ctx, recorded(app, 1))).To(Succeed(), "CAFE records revisions")

	mallory := forger(t, g, ns)
	forged := recorded(app, 2)
	forged.Spec.Template.Spec.Containers[0].Image = "evil.example.com/miner:v1"
	evil := app.DeepCopy()
	evil.Spec.Template = forged.Spec.Template
	forged.Spec.Hash = evil.ContentHash()
	g.Expect(forged.VerifyContent()).To(Succeed(), "the forger hashes its own content honestly")
	err := mallory.Create(ctx, forged)
	g.Expect(err).To(MatchError(ContainSubstring("mallory may not create AppRevisions: CAFE")))
	g.Expect(err).To(MatchError(ContainSubstring("alone records revisions")))

	r1 := &cafev1alpha1.AppRevision{}
	g.Expect(suite.Admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "pay-r1"}, r1)).To(Succeed())
	r1.OwnerReferences[0].Name = "other"
	g.Expect(mallory.Update(ctx, r1)).To(MatchError(ContainSubstring("mallory may not change the owners of an AppRevision")))

	// Written while no webhook guarded revisions: another template under
	// the hash of r1's content.
	planted := recorded(app, 3)
	planted.Spec.Template.Spec.Containers[0].Image = "evil.example.com/miner:v1"
	g.Expect(suite.Admin.Create(ctx, planted)).To(Succeed())
	err = mallory.Patch(ctx, app.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"publishedRevision":"pay-r3"}}`)))
	g.Expect(err).To(MatchError(ContainSubstring("spec.publishedRevision: AppRevision " + ns + "/pay-r3: spec.hash")))
	g.Expect(err).To(MatchError(ContainSubstring("is not the hash of its template, service and config")))
	order := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sneak"}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title: "sneak", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "pay", Revision: "pay-r3"}},
	}}
	g.Expect(mallory.Create(ctx, order)).To(MatchError(ContainSubstring("spec.apps[0].revision: AppRevision " + ns + "/pay-r3: spec.hash")))

	// CAFE's own revisions stay publishable.
	g.Expect(mallory.Patch(ctx, app.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"publishedRevision":"pay-r1"}}`)))).To(Succeed())
}

// forger is "mallory", authenticated by a client certificate, who may
// create and update AppRevisions, publish apps and request orders in ns.
func forger(t *testing.T, g Gomega, ns string) client.Client {
	t.Helper()
	u, err := suite.Env.AddUser(envtest.User{Name: "mallory"}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(suite.Admin.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forger"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"cafe.io"}, Resources: []string{"apprevisions"}, Verbs: []string{"get", "list", "create", "update", "patch"}},
			{APIGroups: []string{"cafe.io"}, Resources: []string{"cafeappservices"}, Verbs: []string{"get", "list", "update", "patch"}},
		},
	})).To(Succeed())
	for _, ref := range []rbacv1.RoleRef{
		{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "forger"},
		{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-release-requester"},
	} {
		g.Expect(suite.Admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mallory-" + ref.Name},
			RoleRef:    ref,
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"}},
		})).To(Succeed())
	}
	c, err := client.New(u.Config(), client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}
