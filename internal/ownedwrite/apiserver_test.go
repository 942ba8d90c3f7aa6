package ownedwrite_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/ownedwrite"
	"github.com/cafe-io/cafe/test/builders"
	"github.com/cafe-io/cafe/test/framework"
)

var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

func cafeDeployment(ns string) *cafev1alpha1.CafeDeployment {
	return builders.CafeDeployment(ns, "web", "example.com/app:v1", cafev1alpha1.CafeDeploymentStrategy{})
}

// A spec rendered from a read that someone else's write has since
// overtaken (an order pausing the CafeDeployment) must not put back what
// that write changed: a locked write fails as a Conflict, and succeeds from
// a fresh read. Unlocked, the same write silently undoes the pause, which is
// why the app controller locks.
func TestLockedWriteRefusesToOverwriteAChangeItDidNotRead(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := framework.CreateNamespace(t, k8sClient)
	g.Expect(k8sClient.Create(ctx, cafeDeployment(ns))).To(Succeed())
	stale := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, stale)).To(Succeed())

	pause := func() {
		cd := &cafev1alpha1.CafeDeployment{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stale), cd)).To(Succeed())
		patch := client.MergeFrom(cd.DeepCopy())
		cd.Spec.Strategy.Pause = true
		g.Expect(k8sClient.Patch(ctx, cd, patch, client.FieldOwner("cafe-releaseorder"))).To(Succeed())
	}
	pause()
	desired := cafeDeployment(ns)
	desired.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	err := ownedwrite.Write(ctx, k8sClient, desired, stale, ownedwrite.Options{Owner: "cafe-app", Locked: true})
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "a locked write over a stale read must conflict, got %v", err)

	fresh := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stale), fresh)).To(Succeed())
	g.Expect(fresh.Spec.Strategy.Pause).To(BeTrue(), "the refused write changed nothing")
	g.Expect(fresh.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:v1"))
	desired.Spec.Strategy.Pause = fresh.Spec.Strategy.Pause
	g.Expect(ownedwrite.Write(ctx, k8sClient, desired, fresh, ownedwrite.Options{Owner: "cafe-app", Locked: true})).To(Succeed())
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stale), fresh)).To(Succeed())
	g.Expect(fresh.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:v2"))
	g.Expect(fresh.Spec.Strategy.Pause).To(BeTrue())

	// Unlocked, the stale read wins: the pause is lost.
	desired = cafeDeployment(ns)
	g.Expect(ownedwrite.Write(ctx, k8sClient, desired, stale, ownedwrite.Options{Owner: "cafe-app"})).To(Succeed())
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stale), fresh)).To(Succeed())
	g.Expect(fresh.Spec.Strategy.Pause).To(BeFalse())
}
