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
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/internal/token"
	"github.com/cafe-io/cafe/test/framework"
)

// An API server started before CAFE, with a configuration that trusts no
// issuer yet, picks up the configuration written once CAFE serves its keys,
// without a restart.
func TestTheAPIServerPicksUpTheIssuerWrittenLater(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	cfgFile := filepath.Join(t.TempDir(), "authentication.yaml")
	g.Expect(os.WriteFile(cfgFile, token.EmptyAuthenticationConfig(), 0o600)).To(Succeed())
	g.Expect(framework.EnsureBinaries(ctx, os.Stderr)).To(Succeed())
	env := &envtest.Environment{BinaryAssetsDirectory: framework.BinDir()}
	env.ControlPlane.GetAPIServer().Configure().Set("authentication-config", cfgFile)
	admin, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })

	key, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	issuer := &token.Issuer{Audience: "cafe", Key: key}
	srv := httptest.NewTLSServer(issuer.Handler())
	t.Cleanup(srv.Close)
	issuer.URL = srv.URL
	cfg, err := token.AuthenticationConfig(issuer.URL, issuer.Audience, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(token.WriteFileAtomic(cfgFile, cfg)).To(Succeed())

	tok, _, err := issuer.Issue("alice", []string{"app-dev"})
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(&rest.Config{Host: admin.Host, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}}, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		r := &authenticationv1.SelfSubjectReview{}
		g.Expect(c.Create(ctx, r)).To(Succeed())
		g.Expect(r.Status.UserInfo.Username).To(Equal("dir:alice"))
	}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
}
