package directory_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/directory"
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

// server is a real slapd on loopback, seeded with bank.
type server struct {
	dir    string
	port   int
	roots  *x509.CertPool
	cert   string
	key    string
	cmd    *exec.Cmd
	reader string
}

func startServer(t *testing.T, g *WithT, dir string, port int, roots *x509.CertPool, cert, key string) *server {
	t.Helper()
	if _, _, err := directory.SlapdBinaries(); err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := directory.PrepareSlapd(ctx, directory.SlapdConfig{Dir: dir, Port: port, CertFile: cert, KeyFile: key, Directory: bank})
	g.Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(s.Binary, s.Args...)
	log, err := os.Create(filepath.Join(dir, "slapd.log"))
	g.Expect(err).NotTo(HaveOccurred())
	cmd.Stdout, cmd.Stderr = log, log
	g.Expect(cmd.Start()).To(Succeed())
	srv := &server{dir: dir, port: port, roots: roots, cert: cert, key: key, cmd: cmd, reader: s.ReaderPassword}
	t.Cleanup(srv.stop)
	// Ready once the reader can search over TLS.
	g.Eventually(func() error {
		_, err := srv.client().Lookup(ctx, "alice")
		return err
	}).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(Succeed(), "slapd serving; its log: %s", filepath.Join(dir, "slapd.log"))
	return srv
}

func (s *server) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func (s *server) url() string { return "ldaps://127.0.0.1:" + itoa(s.port) }

func (s *server) client() directory.Client {
	return directory.Client{URL: s.url(), RootCAs: s.roots, Directory: bank, ReaderPassword: s.reader}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func freePort(g *WithT) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// servingCert writes a CA and a serving certificate for 127.0.0.1 signed
// by it into dir.
func servingCert(g *WithT, dir string) (*x509.CertPool, string, string) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	g.Expect(err).NotTo(HaveOccurred())
	caCert, err := x509.ParseCertificate(caDER)
	g.Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "directory"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	g.Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	g.Expect(err).NotTo(HaveOccurred())
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	g.Expect(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)).To(Succeed())
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return roots, certFile, keyFile
}

func newServer(t *testing.T, g *WithT) *server {
	tls := t.TempDir()
	roots, cert, key := servingCert(g, tls)
	return startServer(t, g, t.TempDir(), freePort(g), roots, cert, key)
}

// Against Debian's slapd on loopback: a user's password is checked by a
// bind as the user, their groups are read; a wrong password, an unknown
// user, an empty password and a disabled account are refused alike.
func TestAuthenticateAgainstARealDirectory(t *testing.T) {
	g := NewWithT(t)
	s := newServer(t, g)
	c := s.client()
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
	s := newServer(t, g)
	ctx := context.Background()

	untrusting := s.client()
	untrusting.RootCAs = x509.NewCertPool()
	_, err := untrusting.Authenticate(ctx, "alice", "alice-secret")
	g.Expect(err).To(MatchError(directory.ErrUnreachable), "a certificate the client does not trust")

	plain := s.client()
	plain.URL = "ldap://127.0.0.1:" + itoa(s.port)
	_, err = plain.Authenticate(ctx, "alice", "alice-secret")
	g.Expect(err).To(MatchError(ContainSubstring("only ldaps://")))

	wrongReader := s.client()
	wrongReader.ReaderPassword = "guess"
	_, err = wrongReader.Lookup(ctx, "alice")
	g.Expect(err).To(MatchError(directory.ErrUnreachable))

	// An anonymous client sees nothing.
	conn, err := ldap.DialURL(s.url(), ldap.DialWithTLSConfig(tlsTrusting(s.roots)))
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
// not a new directory.
func TestASlapdPreparedAgainKeepsItsDatabase(t *testing.T) {
	g := NewWithT(t)
	tlsDir, dir := t.TempDir(), t.TempDir()
	roots, cert, key := servingCert(g, tlsDir)
	first := startServer(t, g, dir, freePort(g), roots, cert, key)
	first.stop()
	second := startServer(t, g, dir, freePort(g), roots, cert, key)
	g.Expect(second.reader).To(Equal(first.reader))
	_, err := second.client().Authenticate(context.Background(), "alice", "alice-secret")
	g.Expect(err).NotTo(HaveOccurred())
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
