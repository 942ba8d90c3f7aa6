package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// clockSkew backdates every certificate, so a replica or API server whose
// clock lags a little behind the issuer's still accepts it.
const clockSkew = 5 * time.Minute

// keyPair is a certificate with its private key, in parsed and PEM form.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// parseKeyPair parses a PEM certificate (the first block) and its private key,
// and checks they belong together.
func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("missing")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", pair.PrivateKey)
	}
	return &keyPair{cert: pair.Leaf, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// parseCertificates returns every certificate of a PEM bundle, skipping
// blocks that are not readable certificates.
func parseCertificates(data []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
}

// encodeCertificates is the PEM bundle of certs, in order.
func encodeCertificates(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// newCA issues a self-signed CA that may sign leaf certificates only.
func newCA(now time.Time, validity time.Duration) (*keyPair, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "cafe-webhook-ca"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, nil)
}

// newServingCert issues a serving certificate for exactly sans, signed by ca.
// It never outlives ca: a client would reject it past the CA's expiry anyway.
func newServingCert(ca *keyPair, s sans, now time.Time, validity time.Duration) (*keyPair, error) {
	notAfter := now.Add(validity)
	if ca.cert.NotAfter.Before(notAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		// Clients match the SANs only; a fixed name avoids the 64-character
		// limit of CommonName that a long DNS name would exceed.
		Subject:               pkix.Name{CommonName: "cafe-webhook"},
		DNSNames:              s.dns,
		IPAddresses:           s.ipAddresses(),
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	return sign(tmpl, ca)
}

// sign generates an ECDSA P-256 key and certifies it with tmpl, signed by
// parent, or self-signed when parent is nil.
func sign(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	// 128 random bits: unique without keeping track of issued serials.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: encodeCertificates(cert),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// sans are the subject alternative names of a serving certificate,
// normalized so that two sets compare equal whatever their order or
// duplicates.
type sans struct {
	dns []string
	ips []string
}

func newSANs(dnsNames []string, ips []net.IP) sans {
	var s sans
	for _, n := range dnsNames {
		// DNS names are case-insensitive; certificates carry them in lower case.
		s.dns = append(s.dns, strings.ToLower(n))
	}
	for _, ip := range ips {
		s.ips = append(s.ips, ip.String())
	}
	slices.Sort(s.dns)
	slices.Sort(s.ips)
	s.dns = slices.Compact(s.dns)
	s.ips = slices.Compact(s.ips)
	return s
}

func sansOf(c *x509.Certificate) sans { return newSANs(c.DNSNames, c.IPAddresses) }

func (s sans) equal(o sans) bool { return slices.Equal(s.dns, o.dns) && slices.Equal(s.ips, o.ips) }

func (s sans) ipAddresses() []net.IP {
	ips := make([]net.IP, 0, len(s.ips))
	for _, ip := range s.ips {
		ips = append(ips, net.ParseIP(ip))
	}
	return ips
}

func (s sans) String() string {
	return "[" + strings.Join(append(slices.Clone(s.dns), s.ips...), " ") + "]"
}
