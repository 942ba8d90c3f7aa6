package directory_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/directory/directorytest"
)

var bank = directory.Directory{
	Base: "dc=bank,dc=example",
	Users: []directory.User{
		{Name: "alice", FullName: "Alice Liddell", Password: "alice-secret"},
		{Name: "bob", Password: "bob-secret"},
		{Name: "eve", Password: "eve-secret", Disabled: true},
	},
	Groups: []directory.Group{
		{Name: "app-dev", Members: []string{"alice", "eve"}},
		{Name: "release-approvers", Members: []string{"bob", "alice"}},
		{Name: "auditors"},
	},
}

// Against Debian's slapd on loopback: a user's password is checked by a
// bind as the user, their groups are read; a wrong password, an unknown
// user, an empty password and a disabled account are refused alike.
func TestAuthenticateAgainstARealDirectory(t *testing.T) {
	g := NewWithT(t)
	s := directorytest.Start(t, bank)
	c := s.Client
	ctx := context.Background()

	alice, err := c.Authenticate(ctx, "alice", "alice-secret")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(alice.DN).To(Equal("uid=alice,ou=people,dc=bank,dc=example"))
	g.Expect(alice.Groups).To(Equal([]string{"app-dev", "release-approvers"}))
	bob, err := c.Authenticate(ctx, "bob", "bob-secret")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bob.Groups).To(Equal([]string{"release-approvers"}))

	for _, tc := range []struct{ user, password, why string }{
		{"alice", "wrong", "a wrong password"},
		{"mallory", "alice-secret", "an unknown user"},
		{"alice", "", "an empty password (an anonymous bind in LDAP)"},
		{"eve", "eve-secret", "a disabled account with its right password"},
		{"alice)(uid=*", "alice-secret", "a filter injection"},
		{"*", "alice-secret", "a wildcard"},
	} {
		_, err := c.Authenticate(ctx, tc.user, tc.password)
		g.Expect(err).To(MatchError(directory.ErrInvalidCredentials), tc.why)
	}

	eve, err := c.Lookup(ctx, "eve")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(eve.Disabled).To(BeTrue())
	g.Expect(eve.Groups).To(Equal([]string{"app-dev"}))
	_, err = c.Lookup(ctx, "mallory")
	g.Expect(err).To(MatchError(directory.ErrInvalidCredentials))
}

// The directory serves nothing without authentication and nothing over a
// connection the client cannot verify; the client never sends a password
// over plain LDAP.
func TestTheDirectoryIsReachedOnlyOverVerifiedTLSAndNeverAnonymously(t *testing.T) {
	g := NewWithT(t)
	s := directorytest.Start(t, bank)
	ctx := context.Background()

	untrusting := s.Client
	untrusting.RootCAs = x509.NewCertPool()
	_, err := untrusting.Authenticate(ctx, "alice", "alice-secret")
	g.Expect(err).To(MatchError(directory.ErrUnreachable), "a certificate the client does not trust")

	plain := s.Client
	plain.URL = "ldap://" + strings.TrimPrefix(s.URL, "ldaps://")
	_, err = plain.Authenticate(ctx, "alice", "alice-secret")
	g.Expect(err).To(MatchError(ContainSubstring("only ldaps://")))

	wrongReader := s.Client
	wrongReader.ReaderPassword = "guess"
	_, err = wrongReader.Lookup(ctx, "alice")
	g.Expect(err).To(MatchError(directory.ErrUnreachable))

	// An anonymous client sees nothing.
	conn, err := ldap.DialURL(s.URL, ldap.DialWithTLSConfig(tlsTrusting(s.Roots)))
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	_, err = conn.Search(ldap.NewSearchRequest("dc=bank,dc=example", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	g.Expect(err).To(HaveOccurred(), "an anonymous search")
	// The directory itself refuses a disabled account's bind (the
	// password policy), whoever asks.
	g.Expect(conn.Bind("uid=eve,ou=people,dc=bank,dc=example", "eve-secret")).NotTo(Succeed())
	// A user cannot read the directory (only CAFE's reader can), nor any
	// password hash.
	g.Expect(conn.Bind("uid=alice,ou=people,dc=bank,dc=example", "alice-secret")).To(Succeed())
	res, err := conn.Search(ldap.NewSearchRequest("dc=bank,dc=example", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"userPassword"}, nil))
	if err == nil {
		g.Expect(res.Entries).To(BeEmpty())
	}
}

// A server prepared again on its directory keeps its database: a restart,
// not a new directory; the administrator's changes stay.
func TestASlapdPreparedAgainKeepsItsDatabase(t *testing.T) {
	g := NewWithT(t)
	s := directorytest.Start(t, bank)
	ctx := context.Background()
	g.Expect(s.Admin.RemoveMember(ctx, "app-dev", "alice")).To(Succeed())
	reader := s.Client.ReaderPassword
	s.Restart()
	g.Expect(s.Client.ReaderPassword).To(Equal(reader))
	alice, err := s.Client.Authenticate(ctx, "alice", "alice-secret")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(alice.Groups).To(Equal([]string{"release-approvers"}))
}

// The administrator changes memberships and disables accounts; the next
// authentication sees it.
func TestTheAdministratorsChangesReachTheNextAuthentication(t *testing.T) {
	g := NewWithT(t)
	s := directorytest.Start(t, bank)
	ctx := context.Background()
	g.Expect(s.Admin.AddMember(ctx, "auditors", "bob")).To(Succeed())
	bob, err := s.Client.Authenticate(ctx, "bob", "bob-secret")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bob.Groups).To(Equal([]string{"auditors", "release-approvers"}))
	g.Expect(s.Admin.Disable(ctx, "bob")).To(Succeed())
	_, err = s.Client.Authenticate(ctx, "bob", "bob-secret")
	g.Expect(err).To(MatchError(directory.ErrInvalidCredentials))
	wrong := s.Admin
	wrong.Password = "guess"
	g.Expect(wrong.AddMember(ctx, "auditors", "alice")).To(MatchError(ContainSubstring("binding as the directory's administrator")))
}

func TestADirectoryWithMembersThatAreNotUsersIsRefused(t *testing.T) {
	g := NewWithT(t)
	d := bank
	d.Groups = []directory.Group{{Name: "app-dev", Members: []string{"zed"}}}
	_, err := d.SeedLDIF("x")
	g.Expect(err).To(MatchError(ContainSubstring("groups[0].members[0]: zed is not a user of the directory")))
	d = bank
	d.Users = append(d.Users, directory.User{Name: "Bad Name", Password: "x"})
	_, err = d.SeedLDIF("x")
	g.Expect(err).To(MatchError(ContainSubstring(`users[3].name "Bad Name"`)))
	g.Expect(errors.Is(err, directory.ErrInvalidCredentials)).To(BeFalse())
}

func tlsTrusting(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
