package releaseorder_test

import (
	"context"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/seal"
)

// No webhook runs in this suite: these helpers leave orders and actions as
// CAFE's admission webhook would, sealed with the key CAFE keeps in its
// namespace, so the controller trusts them. A test that wants a forged
// identity creates the object without them.

// webhookClock stamps admission times as the webhook's clock does.
var webhookClock seal.Clock

// keys loads the key once, as the webhook does.
var keys = &seal.Loader{Namespace: install.Namespace}

func sealKey(ctx context.Context, g Gomega) seal.Key {
	keys.Client = suite.Client
	k, err := keys.Key(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	return k
}

// createOrder creates o sealed over the spec the API server stores: the
// webhook seals the spec after the CRD's defaults are applied, so the
// seal is computed on a dry run's result.
func createOrder(ctx context.Context, g Gomega, o *cafev1alpha1.ReleaseOrder) {
	dry := o.DeepCopy()
	g.Expect(suite.Client.Create(ctx, dry, client.DryRunAll)).To(Succeed())
	o.Spec = dry.Spec
	o.Spec.Seal = sealKey(ctx, g).Order(o.Namespace, o.Spec)
	g.Expect(suite.Client.Create(ctx, o)).To(Succeed())
}

// sealAction stamps an admission time on a and seals it.
func sealAction(ctx context.Context, g Gomega, a *cafev1alpha1.ReleaseAction) *cafev1alpha1.ReleaseAction {
	at := webhookClock.Next()
	a.Spec.AdmittedAt = &at
	a.Spec.Seal = sealKey(ctx, g).Action(a.Namespace, a.Spec)
	return a
}

func createAction(ctx context.Context, g Gomega, a *cafev1alpha1.ReleaseAction) {
	g.Expect(suite.Client.Create(ctx, a)).To(Succeed())
}
