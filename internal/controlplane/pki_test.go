package controlplane

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	. "github.com/onsi/gomega"
)

func TestGeneratePKIIssuesCertificatesThatChainToTheCA(t *testing.T) {
	g := NewWithT(t)
	p, err := GeneratePKI(t.TempDir(), AdminIdentity, CafeIdentity)
	g.Expect(err).NotTo(HaveOccurred())

	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, p.CACert()))

	serving := readCert(t, p.ServingCert())
	_, err = serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "kubernetes.default.svc", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(serving.IPAddresses).To(ContainElement(WithTransform(func(ip any) string { return ip.(interface{ String() string }).String() }, Equal("127.0.0.1"))))

	cafe := readCert(t, p.ClientCert(CafeIdentity))
	_, err = cafe.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cafe.Subject.CommonName).To(Equal("system:serviceaccount:cafe-system:cafe-controller-manager"))
	g.Expect(cafe.Subject.Organization).To(ContainElement("system:serviceaccounts:cafe-system"))
	g.Expect(readCert(t, p.ClientCert(AdminIdentity)).Subject.Organization).To(Equal([]string{"system:masters"}))
	g.Expect(p.ServiceAccountPub()).To(BeAnExistingFile())
}

func TestGeneratePKIKeepsExistingCertificates(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	p, err := GeneratePKI(dir, AdminIdentity)
	g.Expect(err).NotTo(HaveOccurred())
	firstCA := readCert(t, p.CACert())
	firstAdmin := readCert(t, p.ClientCert(AdminIdentity))

	p, err = GeneratePKI(dir, AdminIdentity, KwokIdentity)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(readCert(t, p.CACert()).Equal(firstCA)).To(BeTrue(), "a kept state directory must keep its CA")
	g.Expect(readCert(t, p.ClientCert(AdminIdentity)).Equal(firstAdmin)).To(BeTrue())
	_, err = readCert(t, p.ClientCert(KwokIdentity)).Verify(x509.VerifyOptions{Roots: pool(firstCA), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	g.Expect(err).NotTo(HaveOccurred(), "a certificate added later is signed by the kept CA")
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s is not PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
