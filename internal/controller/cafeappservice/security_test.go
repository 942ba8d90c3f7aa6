package cafeappservice_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Finding 10: an `edit` user pre-creates <app>-r<N>-config (immutable, so
// it looks like CAFE's) with other contents before CAFE records revision
// N, to make the approved revision run that config. CAFE must not adopt
// it: publishing the revision releases nothing and the app's status names
// the ConfigMap; once it is deleted, CAFE recreates it from the revision
// and the release proceeds. A ConfigMap replaced after a release is
// refused the same way.
func TestSecurityF10a_PrecreatedConfigMapRefused(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	planted := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-r1-config", Labels: map[string]string{cafev1alpha1.AppLabel: "shop"}},
		Data:       map[string]string{"GREETING": "pwned", "app.yaml": "limit: 10\n"},
		Immutable:  ptr.To(true),
	}
	g.Expect(suite.Client.Create(ctx, planted)).To(Succeed())
	app := newApp(ns, "shop", "example.com/shop:v1")
	createApp(ctx, t, g, app)
	g.Expect(waitForLatest(ctx, g, app).Spec.ConfigMapName).To(Equal("shop-r1-config"))
	publish(ctx, g, app, "shop-r1")

	expectRefused := func(why string) {
		g.Eventually(func(g Gomega) {
			a := getApp(ctx, g, app)
			ready := meta.FindStatusCondition(a.Status.Conditions, cafev1alpha1.AppReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.ObservedGeneration).To(Equal(a.Generation))
			g.Expect(ready.Reason).To(Equal(cafev1alpha1.AppInvalidPublishReason))
			g.Expect(ready.Message).To(ContainSubstring("ConfigMap " + ns + "/shop-r1-config " + why))
		}).Should(Succeed())
	}
	expectRefused("holds other data")
	g.Consistently(func() bool {
		return apierrors.IsNotFound(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &cafev1alpha1.CafeDeployment{}))
	}).WithTimeout(time.Second).Should(BeTrue(), "nothing is released with a ConfigMap CAFE did not write")
	cm := &corev1.ConfigMap{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(planted), cm)).To(Succeed())
	g.Expect(cm.OwnerReferences).To(BeEmpty(), "not adopted")

	// Deleted, it is recreated from the revision, and the release runs.
	g.Expect(suite.Client.Delete(ctx, planted)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(planted), cm)).To(Succeed())
		g.Expect(cm.Data).To(HaveKeyWithValue("GREETING", "hello"))
	}).WithTimeout(time.Minute).Should(Succeed())
	waitForOutcome(ctx, g, ns, "shop-r1", cafev1alpha1.ReleaseOutcomeSucceeded)

	// Replaced after the release (mutable this time): refused again. CAFE
	// may recreate its own between the delete and the create: replace
	// until ours is the one there.
	replaced := planted.DeepCopy()
	replaced.ResourceVersion, replaced.Immutable = "", nil
	replaced.Data = map[string]string{"GREETING": "hello", "app.yaml": "limit: 10\n"}
	g.Eventually(func() error {
		current := &corev1.ConfigMap{}
		if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(planted), current); err == nil {
			if err := suite.Client.Delete(ctx, current); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
		return suite.Client.Create(ctx, replaced.DeepCopy())
	}).Should(Succeed())
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) {
		metav1.SetMetaDataAnnotation(&a.ObjectMeta, "example.com/nudge", "1")
	})
	expectRefused("is not immutable")
}
