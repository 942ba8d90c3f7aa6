package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the Secret besides tls.crt and tls.key.
const (
	caCertKey = "ca.crt"
	caKeyKey  = "ca.key"
)

// The functions below decide; they neither read nor write anything but their
// arguments, so every "must this be re-issued?" case is a table test.

// caRenewalReason says why the stored CA (ca, or parseErr if it could not be
// read) must be replaced at now, or "" if it is kept. Keeping it is what keeps
// the caBundles stable.
func caRenewalReason(ca *keyPair, parseErr error, now time.Time, renewBefore time.Duration) string {
	switch {
	case parseErr != nil:
		return fmt.Sprintf("CA is unusable: %v", parseErr)
	case !ca.cert.IsCA || ca.cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return "CA certificate may not sign certificates"
	case now.Before(ca.cert.NotBefore):
		return fmt.Sprintf("CA is not valid before %s", ca.cert.NotBefore.UTC().Format(time.RFC3339))
	case inRenewalWindow(ca.cert, now, renewBefore):
		return fmt.Sprintf("CA expires at %s, within the renewal window", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// servingRenewalReason says why the stored serving certificate (serving, or
// parseErr if it could not be read) must be re-issued at now, or "" if it is
// kept.
func servingRenewalReason(serving *keyPair, parseErr error, ca *x509.Certificate, want sans, now time.Time, renewBefore time.Duration) string {
	switch {
	case parseErr != nil:
		return fmt.Sprintf("serving certificate is unusable: %v", parseErr)
	case serving.cert.CheckSignatureFrom(ca) != nil:
		return "serving certificate is not signed by the current CA"
	case !slices.Contains(serving.cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth):
		return "serving certificate is not for server authentication"
	case !sansOf(serving.cert).equal(want):
		return fmt.Sprintf("serving certificate SANs %s differ from %s", sansOf(serving.cert), want)
	case now.Before(serving.cert.NotBefore):
		return fmt.Sprintf("serving certificate is not valid before %s", serving.cert.NotBefore.UTC().Format(time.RFC3339))
	case inRenewalWindow(serving.cert, now, renewBefore):
		return fmt.Sprintf("serving certificate expires at %s, within the renewal window", serving.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// inRenewalWindow reports whether c expires within renewBefore of now (or
// has expired).
func inRenewalWindow(c *x509.Certificate, now time.Time, renewBefore time.Duration) bool {
	return !now.Add(renewBefore).Before(c.NotAfter)
}

// plan is the Secret content Ensure wants, computed from what the Secret
// holds now. Only the four keys it owns are in data; a Secret already holding
// them byte for byte needs no update.
type plan struct {
	data map[string][]byte
	// caReason and servingReason say why each was issued; "" if kept.
	caReason, servingReason string
}

// planSecret decides, from the current Secret data (nil if there is no
// Secret), what it must hold at now. Scenarios:
//
//	CA usable, serving cert good       -> both kept (bundle pruned of expired CAs)
//	CA usable, serving cert bad        -> serving cert re-issued by the kept CA
//	CA unusable or expiring            -> new CA, old CA appended to the bundle
//	                                      while still valid, serving cert
//	                                      re-issued (no longer signed by the CA)
func planSecret(current map[string][]byte, o Options, now time.Time) (plan, error) {
	var p plan
	bundle := parseCertificates(current[caCertKey])
	ca, err := parseKeyPair(current[caCertKey], current[caKeyKey])
	if p.caReason = caRenewalReason(ca, err, now, o.RenewBefore); p.caReason != "" {
		if ca, err = newCA(now, o.CAValidity); err != nil {
			return p, fmt.Errorf("issuing CA: %w", err)
		}
	}
	// The bundle is the signing CA first, then every other CA still valid:
	// certificates they signed may still be served by replicas that have not
	// picked up the new one.
	trusted := []*x509.Certificate{ca.cert}
	for _, c := range bundle {
		if now.Before(c.NotAfter) && !slices.ContainsFunc(trusted, c.Equal) {
			trusted = append(trusted, c)
		}
	}
	caBundle := encodeCertificates(trusted...)

	want := newSANs(o.DNSNames, o.IPAddresses)
	serving, err := parseKeyPair(current[corev1.TLSCertKey], current[corev1.TLSPrivateKeyKey])
	if p.servingReason = servingRenewalReason(serving, err, ca.cert, want, now, o.RenewBefore); p.servingReason != "" {
		if serving, err = newServingCert(ca, want, now, o.CertValidity); err != nil {
			return p, fmt.Errorf("issuing serving certificate: %w", err)
		}
	}
	p.data = map[string][]byte{
		caCertKey:               caBundle,
		caKeyKey:                ca.keyPEM,
		corev1.TLSCertKey:       serving.certPEM,
		corev1.TLSPrivateKeyKey: serving.keyPEM,
	}
	return p, nil
}

// upToDate reports whether current already holds every key of want, byte for byte.
func upToDate(current, want map[string][]byte) bool {
	for k, v := range want {
		if got, ok := current[k]; !ok || !bytes.Equal(got, v) {
			return false
		}
	}
	return true
}

// safeToServe reports whether replacing the certificate on disk (onDisk, nil
// if none) with one signed by ca cannot make clients that trusted the old one
// reject the new one, even if the caBundles could not be patched: nothing
// valid is served at now, or the new CA signed the old certificate too.
func safeToServe(onDisk []byte, ca *x509.Certificate, now time.Time) bool {
	certs := parseCertificates(onDisk)
	return len(certs) == 0 || !now.Before(certs[0].NotAfter) || certs[0].CheckSignatureFrom(ca) == nil
}
