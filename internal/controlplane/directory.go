package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/token"
)

// DirectoryComponent names the directory server (logs, Restart, Kill).
const DirectoryComponent = "directory"

// DemoDirectory is the directory the local control plane seeds: people of
// a bank's release process in their groups, eve's account disabled. Their
// passwords are generated with the directory (DirectoryPassword).
func DemoDirectory() directory.Directory {
	user := func(name, full string) directory.User { return directory.User{Name: name, FullName: full} }
	eve := user("eve", "Eve (left the bank)")
	eve.Disabled = true
	return directory.Directory{
		Base:  "dc=cafe,dc=local",
		Users: []directory.User{user("alice", "Alice (developer)"), user("bob", "Bob (release approver)"), user("carol", "Carol (auditor)"), user("dave", "Dave (team lead)"), eve},
		Groups: []directory.Group{
			{Name: "app-dev", Members: []string{"alice", "dave", "eve"}},
			{Name: "release-approvers", Members: []string{"bob", "dave"}},
			{Name: "auditors", Members: []string{"carol"}},
		},
	}
}

// passwordsFile holds the demo users' passwords ("name password" lines,
// 0600): the local directory's, for people trying CAFE and for tests.
func (l layout) directoryPasswords() string { return filepath.Join(l.directory(), "passwords") }

// startDirectory runs slapd as one of the control plane's children, LDAPS
// on 127.0.0.1 with a certificate of the control plane's CA, seeded the
// first time with DemoDirectory and generated passwords.
func (cp *ControlPlane) startDirectory(ctx context.Context) error {
	d, err := cp.demoDirectoryWithPasswords()
	if err != nil {
		return err
	}
	s, err := directory.PrepareSlapd(ctx, directory.SlapdConfig{
		Dir: cp.layout.directory(), Port: cp.ports.Directory, CertFile: cp.pki.DirectoryCert(), KeyFile: cp.pki.DirectoryKey(), Directory: d,
	})
	if err != nil {
		return fmt.Errorf("preparing the directory: %w", err)
	}
	fmt.Fprintf(cp.cfg.Out, "starting %s (OpenLDAP on %s; users and passwords in %s)\n", DirectoryComponent, s.URL, cp.layout.directoryPasswords())
	p, err := startProcess(DirectoryComponent, s.Binary, s.Args, nil, cp.layout.log(DirectoryComponent))
	if err != nil {
		return err
	}
	return cp.adopt(ctx, p, func(ctx context.Context) error {
		c, err := cp.DirectoryClient()
		if err != nil {
			return err
		}
		// Ready once CAFE's reader can search over verified TLS.
		var last error
		err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
			_, last = c.Lookup(ctx, d.Users[0].Name)
			return last == nil, nil
		})
		if err != nil && last != nil {
			return last
		}
		return err
	})
}

// demoDirectoryWithPasswords is DemoDirectory with each user's password,
// generated once and kept in the passwords file.
func (cp *ControlPlane) demoDirectoryWithPasswords() (directory.Directory, error) {
	d := DemoDirectory()
	passwords, err := cp.directoryPasswords()
	if errors.Is(err, os.ErrNotExist) {
		passwords = map[string]string{}
		var b strings.Builder
		for _, u := range d.Users {
			raw := make([]byte, 12)
			if _, err := rand.Read(raw); err != nil {
				return d, err
			}
			passwords[u.Name] = hex.EncodeToString(raw)
			fmt.Fprintf(&b, "%s %s\n", u.Name, passwords[u.Name])
		}
		if err := os.MkdirAll(cp.layout.directory(), 0o700); err != nil {
			return d, err
		}
		if err := os.WriteFile(cp.layout.directoryPasswords(), []byte(b.String()), 0o600); err != nil {
			return d, err
		}
	} else if err != nil {
		return d, err
	}
	for i := range d.Users {
		d.Users[i].Password = passwords[d.Users[i].Name]
	}
	return d, nil
}

func (cp *ControlPlane) directoryPasswords() (map[string]string, error) {
	raw, err := os.ReadFile(cp.layout.directoryPasswords())
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if name, pw, ok := strings.Cut(line, " "); ok {
			out[name] = pw
		}
	}
	return out, nil
}

// DirectoryURL is the directory's LDAPS URL; empty without Directory.
func (cp *ControlPlane) DirectoryURL() string {
	if !cp.cfg.Directory {
		return ""
	}
	return fmt.Sprintf("ldaps://127.0.0.1:%d", cp.ports.Directory)
}

// DirectoryPassword is a demo user's password.
func (cp *ControlPlane) DirectoryPassword(user string) (string, error) {
	passwords, err := cp.directoryPasswords()
	if err != nil {
		return "", fmt.Errorf("reading the directory's passwords: %w", err)
	}
	pw, ok := passwords[user]
	if !ok {
		return "", fmt.Errorf("the directory has no user %s", user)
	}
	return pw, nil
}

// DirectoryClient reaches the directory as CAFE's read-only account,
// trusting the control plane's CA.
func (cp *ControlPlane) DirectoryClient() (directory.Client, error) {
	if !cp.cfg.Directory {
		return directory.Client{}, errors.New("the control plane runs without a directory")
	}
	caPEM, err := os.ReadFile(cp.pki.CACert())
	if err != nil {
		return directory.Client{}, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	reader, err := os.ReadFile(filepath.Join(cp.layout.directory(), directory.ReaderPasswordFile))
	if err != nil {
		return directory.Client{}, fmt.Errorf("reading the directory's reader password: %w", err)
	}
	return directory.Client{URL: cp.DirectoryURL(), RootCAs: roots, Directory: DemoDirectory(), ReaderPassword: string(reader)}, nil
}

// DirectoryAdmin changes the directory's users and groups as its
// administrator (what the bank's IAM team does in its own tools).
func (cp *ControlPlane) DirectoryAdmin() (directory.Admin, error) {
	c, err := cp.DirectoryClient()
	if err != nil {
		return directory.Admin{}, err
	}
	pw, err := os.ReadFile(filepath.Join(cp.layout.directory(), directory.AdminPasswordFile))
	if err != nil {
		return directory.Admin{}, fmt.Errorf("reading the directory's administrator password: %w", err)
	}
	return directory.Admin{URL: c.URL, RootCAs: c.RootCAs, Directory: c.Directory, Password: string(pw)}, nil
}

// TrustIssuer makes the API server accept the tokens of issuer (an https
// URL; caPEM the CA of its serving certificate) with audience, through its
// structured authentication configuration, which it reloads by itself.
func (cp *ControlPlane) TrustIssuer(issuer, audience, caPEM string) error {
	if !cp.cfg.Directory {
		return errors.New("the control plane runs without a directory: its API server trusts no token issuer")
	}
	cfg, err := token.AuthenticationConfig(issuer, audience, caPEM)
	if err != nil {
		return err
	}
	return token.WriteFileAtomic(cp.layout.authenticationConfig(), cfg)
}
