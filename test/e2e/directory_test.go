package e2e

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/directory"
)

// The control plane's directory (Debian's slapd on loopback) checks the
// demo users' passwords over verified TLS and gives their groups; eve's
// disabled account and a wrong password are refused; restarted, it keeps
// its users.
func TestTheControlPlanesDirectoryAuthenticatesItsUsers(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 2*time.Minute)
	c, err := env.ControlPlane.DirectoryClient()
	g.Expect(err).NotTo(HaveOccurred())
	password := func(user string) string {
		pw, err := env.ControlPlane.DirectoryPassword(user)
		g.Expect(err).NotTo(HaveOccurred())
		return pw
	}
	alice, err := c.Authenticate(ctx, "alice", password("alice"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(alice.Groups).To(Equal([]string{"app-dev"}))
	dave, err := c.Authenticate(ctx, "dave", password("dave"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dave.Groups).To(Equal([]string{"app-dev", "release-approvers"}))
	_, err = c.Authenticate(ctx, "eve", password("eve"))
	g.Expect(err).To(MatchError(directory.ErrInvalidCredentials), "a disabled account")
	_, err = c.Authenticate(ctx, "alice", password("bob"))
	g.Expect(err).To(MatchError(directory.ErrInvalidCredentials), "another user's password")

	g.Expect(env.ControlPlane.Restart(ctx, controlplane.DirectoryComponent)).To(Succeed())
	carol, err := c.Authenticate(ctx, "carol", password("carol"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(carol.Groups).To(Equal([]string{"auditors"}))
}
