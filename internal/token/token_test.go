package token_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/internal/token"
	"github.com/cafe-io/cafe/test/framework"
)

func TestIssuedTokensVerifyAndForgeriesDoNot(t *testing.T) {
	g := NewWithT(t)
	key, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	now := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	i := token.Issuer{URL: "https://127.0.0.1:1", Audience: "cafe", Key: key, Now: func() time.Time { return now }}
	tok, c, err := i.Issue("alice", []string{"app-dev"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Expiry - c.IssuedAt).To(BeEquivalentTo(60))
	got, err := i.Verify(tok)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Subject).To(Equal("alice"))
	g.Expect(got.Groups).To(Equal([]string{"app-dev"}))

	other, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	_, err = token.Issuer{URL: i.URL, Audience: i.Audience, Key: other, Now: i.Now}.Verify(tok)
	g.Expect(err).To(MatchError(token.ErrSignature))
	_, err = token.Issuer{URL: i.URL, Audience: "kubernetes", Key: key, Now: i.Now}.Verify(tok)
	g.Expect(err).To(MatchError(token.ErrClaims))
	later := i
	later.Now = func() time.Time { return now.Add(61 * time.Second) }
	_, err = later.Verify(tok)
	g.Expect(err).To(MatchError(token.ErrExpired))
	_, err = i.Verify(tok[:len(tok)-4] + "AAAA")
	g.Expect(err).To(HaveOccurred())
}

// A real kube-apiserver, started with the authentication configuration
// CAFE writes, accepts CAFE's tokens from the issuer it publishes: the
// user and groups are the directory's under dir:; an expired token, one
// signed by another key and one for another audience are unauthorized.
func TestTheAPIServerAuthenticatesCAFEsTokens(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	issuer, caPEM := serveIssuer(t, g)
	cfg, err := token.AuthenticationConfig(issuer.URL, issuer.Audience, caPEM)
	g.Expect(err).NotTo(HaveOccurred())
	cfgFile := filepath.Join(t.TempDir(), "authentication.yaml")
	g.Expect(os.WriteFile(cfgFile, cfg, 0o600)).To(Succeed())
	admin := startAPIServer(t, g, cfgFile)
	review := func(tok string) (*authenticationv1.SelfSubjectReview, error) { return selfReview(ctx, g, admin, tok) }
	tok, _, err := issuer.Issue("alice", []string{"app-dev", "release-approvers"})
	g.Expect(err).NotTo(HaveOccurred())
	// The API server fetches the issuer's keys when it starts; until then
	// it answers 401.
	var r *authenticationv1.SelfSubjectReview
	g.Eventually(func() error { r, err = review(tok); return err }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(r.Status.UserInfo.Username).To(Equal("dir:alice"))
	g.Expect(r.Status.UserInfo.Groups).To(ContainElements("dir:app-dev", "dir:release-approvers", "system:authenticated"))
	g.Expect(r.Status.UserInfo.Groups).NotTo(ContainElement("system:masters"))

	expired := *issuer
	expired.Now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	old, _, err := expired.Issue("alice", []string{"app-dev"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = review(old)
	g.Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "an expired token: %v", err)

	otherKey, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	forged, _, err := token.Issuer{URL: issuer.URL, Audience: issuer.Audience, Key: otherKey}.Issue("alice", []string{"system:masters"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = review(forged)
	g.Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "a token signed by another key: %v", err)

	wrongAudience, _, err := token.Issuer{URL: issuer.URL, Audience: "kubernetes", Key: issuer.Key}.Issue("alice", nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = review(wrongAudience)
	g.Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "another audience: %v", err)

	long := *issuer
	long.Lifetime = 2 * time.Hour
	tooLong, _, err := long.Issue("alice", []string{"app-dev"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = review(tooLong)
	g.Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "a token living longer than an hour (the configuration's claim rule): %v", err)

	// The signing key is kept in a Secret: created once, the same after.
	adminClient, err := client.New(admin, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(adminClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cafe-system"}})).To(Succeed())
	first, err := token.EnsureKey(ctx, adminClient, "cafe-system")
	g.Expect(err).NotTo(HaveOccurred())
	again, err := token.EnsureKey(ctx, adminClient, "cafe-system")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Equal(first)).To(BeTrue())

	// A group named like a Kubernetes system group stays the directory's.
	masters, _, err := issuer.Issue("mallory", []string{"system:masters"})
	g.Expect(err).NotTo(HaveOccurred())
	r, err = review(masters)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Status.UserInfo.Groups).To(ContainElement("dir:system:masters"))
	g.Expect(r.Status.UserInfo.Groups).NotTo(ContainElement("system:masters"))
}

// serveIssuer serves a new issuer's discovery and keys over TLS on
// loopback; it returns the issuer and the CA of its certificate.
func serveIssuer(t *testing.T, g Gomega) (*token.Issuer, string) {
	key, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	issuer := &token.Issuer{Audience: token.Audience, Key: key}
	srv := httptest.NewTLSServer(issuer.Handler())
	t.Cleanup(srv.Close)
	issuer.URL = srv.URL
	return issuer, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// startAPIServer runs a kube-apiserver (and its etcd) with
// --authentication-config=cfgFile until the test ends, its log shown when
// the test fails, and returns its admin configuration.
func startAPIServer(t *testing.T, g Gomega, cfgFile string) *rest.Config {
	g.Expect(framework.EnsureBinaries(context.Background(), os.Stderr)).To(Succeed())
	apiLog, err := os.Create(filepath.Join(t.TempDir(), "kube-apiserver.log"))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(apiLog.Name())
			t.Logf("kube-apiserver's log:\n%s", raw)
		}
	})
	env, admin, err := framework.StartEnvironment(func() *envtest.Environment {
		env := &envtest.Environment{BinaryAssetsDirectory: framework.BinDir()}
		api := env.ControlPlane.GetAPIServer()
		api.Configure().Set("authentication-config", cfgFile)
		api.Out, api.Err = apiLog, apiLog
		return env
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	return admin
}

// selfReview asks the API server who the bearer of tok is.
func selfReview(ctx context.Context, g Gomega, admin *rest.Config, tok string) (*authenticationv1.SelfSubjectReview, error) {
	c, err := client.New(&rest.Config{Host: admin.Host, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}}, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	r := &authenticationv1.SelfSubjectReview{}
	return r, c.Create(ctx, r)
}
