package token_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"

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
	admin := startAPIServer(t, g, cfgFile)

	issuer, caPEM := serveIssuer(t, g)
	cfg, err := token.AuthenticationConfig(issuer.URL, issuer.Audience, caPEM)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(token.WriteFileAtomic(cfgFile, cfg)).To(Succeed())

	tok, _, err := issuer.Issue("alice", []string{"app-dev"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		r, err := selfReview(ctx, g, admin, tok)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(r.Status.UserInfo.Username).To(Equal("dir:alice"))
	}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
}
