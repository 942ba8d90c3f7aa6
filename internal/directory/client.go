package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Errors of the client. A wrong password, an unknown user and a disabled
// account are one error: telling them apart would tell a guesser which
// names exist.
var (
	// ErrInvalidCredentials: the user does not exist, the password is
	// wrong, or the account is disabled.
	ErrInvalidCredentials = errors.New("invalid user name or password")
	// ErrUnreachable: the directory did not answer (or not over TLS with
	// a certificate the client trusts).
	ErrUnreachable = errors.New("the directory is unreachable")
)

// Client authenticates users against a directory over LDAPS and reads
// their groups, searching as a read-only account.
type Client struct {
	// URL is ldaps://host:port; plain ldap:// is refused.
	URL string
	// RootCAs verify the directory's serving certificate.
	RootCAs *x509.CertPool
	// Directory gives the base and the entries' names (its users and
	// groups are not used).
	Directory Directory
	// ReaderPassword is the password of Directory.ReaderDN.
	ReaderPassword string
	// Timeout bounds each operation; zero means 5 s.
	Timeout time.Duration
}

// Identity is a user as the directory knows them now.
type Identity struct {
	Name string
	DN   string
	// Groups are the names of the groups the user is a member of, sorted.
	Groups []string
	// Disabled: the account is locked (it cannot bind).
	Disabled bool
}

// Authenticate checks user's password with a bind as the user, and
// returns the user's groups. An empty password is refused before any
// bind: LDAP treats a simple bind without one as anonymous, which would
// succeed.
func (c Client) Authenticate(ctx context.Context, user, password string) (Identity, error) {
	if password == "" || !namePattern.MatchString(user) {
		return Identity{}, ErrInvalidCredentials
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return Identity{}, err
	}
	defer conn.Close()
	id, err := c.lookup(conn, user)
	if err != nil {
		return Identity{}, err
	}
	if err := conn.Bind(id.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return Identity{}, ErrInvalidCredentials
		}
		return Identity{}, fmt.Errorf("%w: binding as %s: %v", ErrUnreachable, user, err)
	}
	if id.Disabled {
		// ppolicy refuses the bind of a locked account; this holds on a
		// directory that locks accounts another way.
		return Identity{}, ErrInvalidCredentials
	}
	return id, nil
}

// Lookup reads the user's entry and groups as the reader, without their
// password: whether they still exist, are enabled, and in which groups
// (for renewing a credential without asking for the password again).
func (c Client) Lookup(ctx context.Context, user string) (Identity, error) {
	if !namePattern.MatchString(user) {
		return Identity{}, ErrInvalidCredentials
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return Identity{}, err
	}
	defer conn.Close()
	return c.lookup(conn, user)
}

// lookup binds as the reader and reads the user and their groups;
// ErrInvalidCredentials when there is no such user.
func (c Client) lookup(conn *ldap.Conn, user string) (Identity, error) {
	if err := conn.Bind(c.Directory.ReaderDN(), c.ReaderPassword); err != nil {
		return Identity{}, fmt.Errorf("%w: binding as %s: %v", ErrUnreachable, c.Directory.ReaderDN(), err)
	}
	people, err := conn.Search(ldap.NewSearchRequest("ou=people,"+c.Directory.Base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 2, 0, false,
		fmt.Sprintf("(&(objectClass=inetOrgPerson)(uid=%s))", ldap.EscapeFilter(user)), []string{"uid", "pwdAccountLockedTime"}, nil))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: searching for %s: %v", ErrUnreachable, user, err)
	}
	if len(people.Entries) != 1 {
		return Identity{}, ErrInvalidCredentials
	}
	e := people.Entries[0]
	id := Identity{Name: user, DN: e.DN, Disabled: e.GetAttributeValue("pwdAccountLockedTime") != ""}
	groups, err := conn.Search(ldap.NewSearchRequest("ou=groups,"+c.Directory.Base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		fmt.Sprintf("(&(objectClass=groupOfNames)(member=%s))", ldap.EscapeFilter(e.DN)), []string{"cn"}, nil))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: searching the groups of %s: %v", ErrUnreachable, user, err)
	}
	for _, g := range groups.Entries {
		id.Groups = append(id.Groups, g.GetAttributeValue("cn"))
	}
	slices.Sort(id.Groups)
	return id, nil
}

// dial opens an LDAPS connection that verifies the server's certificate.
func (c Client) dial(ctx context.Context) (*ldap.Conn, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	if !strings.HasPrefix(c.URL, "ldaps://") {
		return nil, fmt.Errorf("%w: %s: only ldaps:// (passwords never travel in clear)", ErrUnreachable, c.URL)
	}
	dialer := &net.Dialer{Timeout: timeout}
	conn, err := ldap.DialURL(c.URL, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(&tls.Config{RootCAs: c.RootCAs, MinVersion: tls.VersionTLS13}))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	conn.SetTimeout(timeout)
	return conn, nil
}
