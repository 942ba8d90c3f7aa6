package directory

import (
	"cmp"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Directory is a directory's content: its base, users and groups.
type Directory struct {
	// Base is the suffix every entry sits under, e.g. dc=bank,dc=example.
	Base   string
	Users  []User
	Groups []Group
}

// User is a person of the directory (an inetOrgPerson under ou=people).
type User struct {
	// Name is the login name (uid).
	Name     string
	FullName string
	// Password is hashed (salted SHA-512) into the seed; never stored.
	Password string
	// Disabled locks the account (ppolicy's pwdAccountLockedTime): its
	// binds fail, as a disabled account's in Active Directory.
	Disabled bool
}

// Group is a groupOfNames under ou=groups; Members are user names.
type Group struct {
	Name    string
	Members []string
}

// namePattern is what user and group names may be: they become RDN values
// and Kubernetes user and group names unescaped.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)

// Validate refuses a directory whose names cannot be entries, members that
// are not users, and duplicates.
func (d Directory) Validate() error {
	if d.Base == "" || !strings.HasPrefix(d.Base, "dc=") {
		return fmt.Errorf("base %q: must be a dc=… suffix", d.Base)
	}
	users := map[string]bool{}
	for i, u := range d.Users {
		if !namePattern.MatchString(u.Name) {
			return fmt.Errorf("users[%d].name %q: must match %s", i, u.Name, namePattern)
		}
		if users[u.Name] {
			return fmt.Errorf("users[%d].name: %s is listed twice", i, u.Name)
		}
		if u.Password == "" {
			return fmt.Errorf("users[%d].password: %s needs one", i, u.Name)
		}
		users[u.Name] = true
	}
	groups := map[string]bool{}
	for i, g := range d.Groups {
		if !namePattern.MatchString(g.Name) {
			return fmt.Errorf("groups[%d].name %q: must match %s", i, g.Name, namePattern)
		}
		if groups[g.Name] {
			return fmt.Errorf("groups[%d].name: %s is listed twice", i, g.Name)
		}
		groups[g.Name] = true
		for j, m := range g.Members {
			if !users[m] {
				return fmt.Errorf("groups[%d].members[%d]: %s is not a user of the directory", i, j, m)
			}
		}
	}
	return nil
}

// UserDN is the entry of user name.
func (d Directory) UserDN(name string) string { return "uid=" + name + ",ou=people," + d.Base }

// GroupDN is the entry of group name.
func (d Directory) GroupDN(name string) string { return "cn=" + name + ",ou=groups," + d.Base }

// AdminDN is the directory's administrator (who changes its users and
// groups: the bank's IAM team; the tests).
func (d Directory) AdminDN() string { return "cn=admin," + d.Base }

// ReaderDN is the read-only account CAFE searches with.
func (d Directory) ReaderDN() string { return "cn=cafe-reader," + d.Base }

// policyDN is the password policy every account falls under (it enables
// the lock of disabled accounts).
func (d Directory) policyDN() string { return "cn=default,ou=policies," + d.Base }

// SeedLDIF is the directory's content as LDIF for slapadd: the base, the
// organisational units, the password policy, CAFE's reader account (with
// readerPassword), the users and the groups. Passwords are salted SHA-512
// hashes.
func (d Directory) SeedLDIF(readerPassword string) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	entry := func(lines ...string) {
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	dc := strings.TrimPrefix(strings.SplitN(d.Base, ",", 2)[0], "dc=")
	entry("dn: "+d.Base, "objectClass: dcObject", "objectClass: organization", "dc: "+dc, "o: "+dc)
	for _, ou := range []string{"people", "groups", "policies"} {
		entry("dn: ou="+ou+","+d.Base, "objectClass: organizationalUnit", "ou: "+ou)
	}
	entry("dn: "+d.policyDN(), "objectClass: pwdPolicy", "objectClass: device", "cn: default", "pwdAttribute: userPassword", "pwdLockout: TRUE")
	hash, err := ssha512(readerPassword)
	if err != nil {
		return "", err
	}
	entry("dn: "+d.ReaderDN(), "objectClass: organizationalRole", "objectClass: simpleSecurityObject", "cn: cafe-reader", "userPassword: "+hash)
	for _, u := range d.Users {
		hash, err := ssha512(u.Password)
		if err != nil {
			return "", err
		}
		lines := []string{"dn: " + d.UserDN(u.Name), "objectClass: inetOrgPerson", "uid: " + u.Name, "cn: " + cmp.Or(u.FullName, u.Name), "sn: " + u.Name, "userPassword: " + hash}
		if u.Disabled {
			// The value ppolicy reads as locked until an administrator
			// unlocks the account.
			lines = append(lines, "pwdAccountLockedTime: 000001010000Z")
		}
		entry(lines...)
	}
	for _, g := range d.Groups {
		lines := []string{"dn: " + d.GroupDN(g.Name), "objectClass: groupOfNames", "cn: " + g.Name}
		members := slices.Clone(g.Members)
		if len(members) == 0 {
			// groupOfNames needs a member: an empty group holds only the
			// reader, which no credential is ever issued for.
			lines = append(lines, "member: "+d.ReaderDN())
		}
		for _, m := range members {
			lines = append(lines, "member: "+d.UserDN(m))
		}
		entry(lines...)
	}
	return b.String(), nil
}

// ssha512 is OpenLDAP's {SSHA512} scheme (the pw-sha2 module): SHA-512
// over the password and an 8-byte salt, the salt appended.
func ssha512(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salting a password: %w", err)
	}
	sum := sha512.Sum512(append([]byte(password), salt...))
	return "{SSHA512}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...)), nil
}
