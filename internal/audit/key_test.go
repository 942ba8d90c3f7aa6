package audit_test

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/test/framework"
)

var k8sClient client.WithWatch

func TestMain(m *testing.M) {
	os.Exit(framework.EnvtestMain(m, func(cfg *rest.Config) (err error) {
		k8sClient, err = framework.NewClient(cfg)
		return err
	}))
}

func TestTheSigningKeyIsCreatedOnceAndItsPublicKeyVerifiesTrails(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := t.Context()
	ns := framework.CreateNamespace(t, k8sClient)

	first, err := audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	again, err := audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Key.Equal(first.Key)).To(BeTrue(), "a restarted controller signs with the same key")

	trail := first.Append(nil, cafev1alpha1.AuditEntry{Time: metav1.NewMicroTime(time.Now()), Actor: "alice", Action: "Approve"})
	pub, err := audit.PublicKey(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(audit.Verify(trail, pub)).To(BeNil())
}
