// Package directorytest runs a real directory (Debian's slapd) on loopback
// for tests: its own CA and serving certificate, a free port, and clients
// for its reader and administrator. It needs slapd installed (make tools).
package directorytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cafe-io/cafe/internal/directory"
)

// Server is a running slapd seeded with a directory.
type Server struct {
	t         *testing.T
	dir       string
	cert, key string
	directory directory.Directory
	cmd       *exec.Cmd
	// Roots trust the server's certificate.
	Roots *x509.CertPool
	// URL is its ldaps:// URL.
	URL string
	// Client reads as CAFE's reader; Admin changes users and groups.
	Client directory.Client
	Admin  directory.Admin
}

// Start runs slapd seeded with d until the test ends, and waits until the
// reader can search over verified TLS.
func Start(t *testing.T, d directory.Directory) *Server {
	t.Helper()
	if _, _, err := directory.SlapdBinaries(); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, dir: t.TempDir(), directory: d}
	s.Roots, s.cert, s.key = servingCert(t, t.TempDir())
	s.start()
	return s
}

// Restart stops the server and starts it again on the same database, on a
// new port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Stop stops the server (it is also stopped when the test ends).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prepared, err := directory.PrepareSlapd(ctx, directory.SlapdConfig{Dir: s.dir, Port: freePort(t), CertFile: s.cert, KeyFile: s.key, Directory: s.directory})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prepared.Binary, prepared.Args...)
	log, err := os.OpenFile(filepath.Join(s.dir, "slapd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	t.Cleanup(s.Stop)
	s.URL = prepared.URL
	s.Client = directory.Client{URL: s.URL, RootCAs: s.Roots, Directory: s.directory, ReaderPassword: prepared.ReaderPassword}
	s.Admin = directory.Admin{URL: s.URL, RootCAs: s.Roots, Directory: s.directory, Password: prepared.AdminPassword}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Client.Lookup(ctx, s.directory.Users[0].Name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			raw, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
			t.Fatalf("slapd not serving: %v; its log:\n%s", err, raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// servingCert writes a CA's serving certificate for 127.0.0.1 into dir and
// returns roots trusting the CA.
func servingCert(t *testing.T, dir string) (*x509.CertPool, string, string) {
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	must(err)
	caCert, err := x509.ParseCertificate(caDER)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "directory"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	must(err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	must(err)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	must(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return roots, certFile, keyFile
}
