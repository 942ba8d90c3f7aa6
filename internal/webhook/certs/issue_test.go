package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// t0 is the fixed "now" of the pure tests.
var t0 = time.Date(2026, time.August, 1, 12, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, now time.Time, validity time.Duration) *keyPair {
	t.Helper()
	ca, err := newCA(now, validity)
	if err != nil {
		t.Fatalf("issuing CA: %v", err)
	}
	return ca
}

func mustServing(t *testing.T, ca *keyPair, s sans, now time.Time, validity time.Duration) *keyPair {
	t.Helper()
	c, err := newServingCert(ca, s, now, validity)
	if err != nil {
		t.Fatalf("issuing serving certificate: %v", err)
	}
	return c
}

func isP256(g *WithT, c *x509.Certificate) {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	g.Expect(ok).To(BeTrue(), "public key is %T, want ECDSA", c.PublicKey)
	g.Expect(pub.Curve).To(Equal(elliptic.P256()))
}

func TestNewCAIssuesACAThatMaySignOnlyLeafCertificates(t *testing.T) {
	g := NewWithT(t)
	ca := mustCA(t, t0, DefaultCAValidity)

	g.Expect(ca.cert.IsCA).To(BeTrue())
	g.Expect(ca.cert.BasicConstraintsValid).To(BeTrue())
	g.Expect(ca.cert.MaxPathLen).To(Equal(0))
	g.Expect(ca.cert.MaxPathLenZero).To(BeTrue())
	g.Expect(ca.cert.KeyUsage).To(Equal(x509.KeyUsageCertSign))
	g.Expect(ca.cert.NotAfter).To(BeTemporally("==", t0.Add(DefaultCAValidity)))
	g.Expect(ca.cert.NotBefore).To(BeTemporally("<", t0))
	g.Expect(ca.cert.CheckSignatureFrom(ca.cert)).To(Succeed(), "self-signed")
	isP256(g, ca.cert)

	parsed, err := parseKeyPair(ca.certPEM, ca.keyPEM)
	g.Expect(err).NotTo(HaveOccurred(), "the PEM it stores reads back")
	g.Expect(parsed.cert.Equal(ca.cert)).To(BeTrue())
}

func TestNewServingCertIsAServerCertificateForExactlyTheSANsSignedByTheCA(t *testing.T) {
	g := NewWithT(t)
	ca := mustCA(t, t0, DefaultCAValidity)
	s := mustServing(t, ca, newSANs([]string{"cafe-webhook-service.cafe-system.svc", "cafe-webhook-service.cafe-system.svc.cluster.local"}, []net.IP{net.ParseIP("127.0.0.1")}), t0, DefaultCertValidity)

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, name := range []string{"cafe-webhook-service.cafe-system.svc", "127.0.0.1"} {
		_, err := s.cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		g.Expect(err).NotTo(HaveOccurred(), "verifying for %s", name)
	}
	g.Expect(s.cert.DNSNames).To(ConsistOf("cafe-webhook-service.cafe-system.svc", "cafe-webhook-service.cafe-system.svc.cluster.local"))
	g.Expect(s.cert.IPAddresses).To(HaveLen(1))
	g.Expect(s.cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1"))).To(BeTrue())
	g.Expect(s.cert.IsCA).To(BeFalse())
	g.Expect(s.cert.KeyUsage).To(Equal(x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment))
	g.Expect(s.cert.ExtKeyUsage).To(Equal([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}))
	g.Expect(s.cert.NotAfter).To(BeTemporally("==", t0.Add(DefaultCertValidity)))
	isP256(g, s.cert)
}

func TestNewServingCertNeverOutlivesItsCA(t *testing.T) {
	g := NewWithT(t)
	ca := mustCA(t, t0, 90*24*time.Hour)
	s := mustServing(t, ca, newSANs([]string{"a.b.svc"}, nil), t0, DefaultCertValidity)
	g.Expect(s.cert.NotAfter).To(BeTemporally("==", ca.cert.NotAfter))
}

func TestSerialNumbersAreLargeRandomAndDistinct(t *testing.T) {
	g := NewWithT(t)
	ca := mustCA(t, t0, DefaultCAValidity)
	s := newSANs([]string{"a.b.svc"}, nil)
	one, two := mustServing(t, ca, s, t0, DefaultCertValidity), mustServing(t, ca, s, t0, DefaultCertValidity)
	g.Expect(one.cert.SerialNumber.Cmp(two.cert.SerialNumber)).NotTo(Equal(0))
	for _, c := range []*x509.Certificate{ca.cert, one.cert, two.cert} {
		g.Expect(c.SerialNumber.Sign()).To(Equal(1))
		// Below 2^64 by chance once in 2^64 draws.
		g.Expect(c.SerialNumber.BitLen()).To(BeNumerically(">", 64))
	}
}

func TestSANsCompareAsSets(t *testing.T) {
	tests := []struct {
		name      string
		have      sans
		want      sans
		wantEqual bool
	}{
		{
			name:      "the same names in another order and with duplicates are equal",
			have:      newSANs([]string{"b.svc", "a.svc"}, []net.IP{net.ParseIP("::1"), net.ParseIP("127.0.0.1")}),
			want:      newSANs([]string{"a.svc", "b.svc", "a.svc"}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}),
			wantEqual: true,
		},
		{
			name:      "DNS names differing only in case are equal",
			have:      newSANs([]string{"Cafe.SVC"}, nil),
			want:      newSANs([]string{"cafe.svc"}, nil),
			wantEqual: true,
		},
		{
			name:      "an IPv4 address in its 16-byte form is the same address",
			have:      newSANs(nil, []net.IP{net.IPv4(127, 0, 0, 1).To16()}),
			want:      newSANs(nil, []net.IP{net.IPv4(127, 0, 0, 1).To4()}),
			wantEqual: true,
		},
		{
			name: "an added DNS name is a change",
			have: newSANs([]string{"a.svc"}, nil),
			want: newSANs([]string{"a.svc", "b.svc"}, nil),
		},
		{
			name: "a removed IP address is a change",
			have: newSANs([]string{"a.svc"}, []net.IP{net.ParseIP("127.0.0.1")}),
			want: newSANs([]string{"a.svc"}, nil),
		},
		{
			name: "a name moved from DNS to IP is a change",
			have: newSANs([]string{"127.0.0.1"}, nil),
			want: newSANs(nil, []net.IP{net.ParseIP("127.0.0.1")}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tt.have.equal(tt.want)).To(Equal(tt.wantEqual))
			g.Expect(tt.want.equal(tt.have)).To(Equal(tt.wantEqual), "equality is symmetric")
		})
	}
}
