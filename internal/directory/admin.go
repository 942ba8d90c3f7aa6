package directory

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/go-ldap/ldap/v3"
)

// Admin changes a directory's users and groups as its administrator: what
// the bank's IAM team does in its own tools, here for the local directory
// and the tests.
type Admin struct {
	URL       string
	RootCAs   *x509.CertPool
	Directory Directory
	Password  string
}

// AddMember puts user into group.
func (a Admin) AddMember(ctx context.Context, group, user string) error {
	return a.modify(ctx, a.Directory.GroupDN(group), func(m *ldap.ModifyRequest) {
		m.Add("member", []string{a.Directory.UserDN(user)})
	})
}

// RemoveMember takes user out of group.
func (a Admin) RemoveMember(ctx context.Context, group, user string) error {
	return a.modify(ctx, a.Directory.GroupDN(group), func(m *ldap.ModifyRequest) {
		m.Delete("member", []string{a.Directory.UserDN(user)})
	})
}

// Disable locks user's account (the password policy then refuses its
// binds).
func (a Admin) Disable(ctx context.Context, user string) error {
	return a.modify(ctx, a.Directory.UserDN(user), func(m *ldap.ModifyRequest) {
		m.Replace("pwdAccountLockedTime", []string{"000001010000Z"})
	})
}

func (a Admin) modify(ctx context.Context, dn string, change func(*ldap.ModifyRequest)) error {
	conn, err := Client{URL: a.URL, RootCAs: a.RootCAs}.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Bind(a.Directory.AdminDN(), a.Password); err != nil {
		return fmt.Errorf("binding as the directory's administrator: %w", err)
	}
	m := ldap.NewModifyRequest(dn, nil)
	change(m)
	if err := conn.Modify(m); err != nil {
		return fmt.Errorf("changing %s: %w", dn, err)
	}
	return nil
}
