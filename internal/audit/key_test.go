package audit_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/test/framework"
)

var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

// signerTest skips without an API server and returns a namespace of the
// test's own with CAFE's signer created there.
func signerTest(t *testing.T) (context.Context, *WithT, string, audit.Signer) {
	t.Helper()
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := t.Context()
	ns := framework.CreateNamespace(t, k8sClient)
	signer, _, err := audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	return ctx, g, ns, signer
}

var subject = audit.Subject{Namespace: "shop", Name: "weekly", UID: "uid-1"}

func entry() cafev1alpha1.AuditEntry {
	return cafev1alpha1.AuditEntry{Time: metav1.NewMicroTime(time.Now()), Actor: "alice", Action: "Approve"}
}

func TestTheSigningKeyIsCreatedOnceAndItsPublicKeyVerifiesTrails(t *testing.T) {
	ctx, g, ns, first := signerTest(t)
	again, _, err := audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Key.Equal(first.Key)).To(BeTrue(), "a restarted controller signs with the same key")

	trail := first.Append(subject, nil, entry())
	bundle, err := audit.PublishedKeys(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	_, p := audit.Verify(audit.Record{Subject: subject, Trail: trail, Head: first.Head(subject, trail)}, bundle.Ring())
	g.Expect(p).To(BeNil())
}

// Finding 4: a replaced (or deleted) key Secret was adopted at the next
// start — or stalled every order without saying so. Now CAFE refuses a key
// the bundle does not publish as current, says which keys differ, and
// publishes nothing.
func TestSecurityF4_ReplacedKeyDetected(t *testing.T) {
	ctx, g, ns, original := signerTest(t)
	published := &corev1.ConfigMap{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: audit.PublicKeyConfig}, published)).To(Succeed())

	// Someone replaces the Secret with a key of their own.
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: audit.SigningKeySecret}}
	g.Expect(k8sClient.Delete(ctx, key)).To(Succeed())
	g.Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: audit.SigningKeySecret},
		Data:       map[string][]byte{"ed25519.seed": []byte("0123456789abcdef0123456789abcdef")},
	})).To(Succeed())
	_, _, err := audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).To(MatchError(audit.ErrKeyNotPublished))
	g.Expect(err.Error()).To(ContainSubstring("publishes " + original.ID() + " as current (it was never published): the Secret was replaced"))

	// Or deletes it: no new key is created silently either.
	g.Expect(k8sClient.Delete(ctx, key)).To(Succeed())
	_, _, err = audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).To(MatchError(audit.ErrKeyNotPublished))
	g.Expect(err.Error()).To(ContainSubstring("is missing while key " + original.ID() + " is published"))
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(key), &corev1.Secret{})).NotTo(Succeed(), "no key was created")

	after := &corev1.ConfigMap{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(published), after)).To(Succeed())
	g.Expect(after.Data).To(Equal(published.Data), "the published keys are unchanged")
}

// Finding 4: rotating the key kept no old key: every earlier trail failed.
func TestSecurityF4_KeyRotationKeepsOldTrailsVerifiable(t *testing.T) {
	ctx, g, ns, before := signerTest(t)
	trail := before.Append(subject, nil, entry())

	newID, err := audit.Rotate(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(newID).NotTo(Equal(before.ID()))
	after, bundle, err := audit.EnsureSigner(ctx, k8sClient, ns)
	g.Expect(err).NotTo(HaveOccurred(), "the rotated key is adopted")
	g.Expect(after.ID()).To(Equal(newID))
	g.Expect(bundle.Ring().IDs()).To(ConsistOf(before.ID(), newID))

	trail = after.Append(subject, trail, entry())
	rep, p := audit.Verify(audit.Record{Subject: subject, Trail: trail, Head: after.Head(subject, trail)}, bundle.Ring())
	g.Expect(p).To(BeNil())
	g.Expect(rep.KeyIDs).To(Equal([]string{before.ID(), newID}))
}
