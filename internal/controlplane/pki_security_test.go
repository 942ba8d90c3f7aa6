package controlplane

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Review finding 13: a kept --state-dir's CA is reused only if it is a CA,
// valid now, its key is the one of the certificate and only its owner can
// read the key; otherwise GeneratePKI refuses, saying why.
func TestSecurityF13_KeptCAIsChecked(t *testing.T) {
	fresh := func(g *WithT) PKI {
		p, err := GeneratePKI(t.TempDir(), AdminIdentity)
		g.Expect(err).NotTo(HaveOccurred())
		return p
	}
	t.Run("a key of another CA", func(t *testing.T) {
		g := NewWithT(t)
		p, other := fresh(g), fresh(g)
		key, err := os.ReadFile(other.CAKey())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.WriteFile(p.CAKey(), key, 0o600)).To(Succeed())
		_, err = GeneratePKI(p.Dir, AdminIdentity)
		g.Expect(err).To(MatchError(ContainSubstring("ca.key does not belong to ca.crt")))
	})
	t.Run("a key others can read", func(t *testing.T) {
		g := NewWithT(t)
		p := fresh(g)
		g.Expect(os.Chmod(p.CAKey(), 0o644)).To(Succeed())
		_, err := GeneratePKI(p.Dir, AdminIdentity)
		g.Expect(err).To(MatchError(ContainSubstring("ca.key is accessible to others")))
	})
	t.Run("an expired CA", func(t *testing.T) {
		g := NewWithT(t)
		p := fresh(g)
		cert, key, err := loadCA(p)
		g.Expect(err).NotTo(HaveOccurred())
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: "cafe-local-ca"},
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, cert.PublicKey, key)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(writePEM(p.CACert(), "CERTIFICATE", der)).To(Succeed())
		_, err = GeneratePKI(p.Dir, AdminIdentity)
		g.Expect(err).To(MatchError(ContainSubstring("not now")))
	})
	t.Run("a good CA is kept", func(t *testing.T) {
		g := NewWithT(t)
		p := fresh(g)
		_, err := GeneratePKI(p.Dir, AdminIdentity, KwokIdentity)
		g.Expect(err).NotTo(HaveOccurred())
	})
}
