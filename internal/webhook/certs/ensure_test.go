package certs_test

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/cafe-io/cafe/internal/webhook/certs"
)

func TestEnsureIssuesTheCertificatesWritesTheFilesAndInjectsTheCABundle(t *testing.T) {
	f := newFixture(t)
	f.createConfigurations()
	opts := f.opts
	// A configuration that is not installed yet is no error.
	opts.ValidatingWebhookConfigurations = append(opts.ValidatingWebhookConfigurations, f.opts.Namespace+"-not-installed")

	f.ensure(opts)

	s := f.secret()
	f.g.Expect(s.Type).To(Equal(corev1.SecretTypeTLS))
	f.g.Expect(s.Data).To(HaveKey("ca.key"))
	bundles := f.caBundles()
	f.g.Expect(bundles).To(HaveLen(3))
	for _, b := range bundles {
		f.g.Expect(b).To(Equal(s.Data["ca.crt"]), "every webhook carries the CA")
	}
	serving := parseCert(t, s.Data[corev1.TLSCertKey])
	for _, name := range []string{opts.DNSNames[0], "127.0.0.1"} {
		_, err := serving.Verify(x509.VerifyOptions{
			Roots:     pool(t, bundles[0]),
			DNSName:   name,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		f.g.Expect(err).NotTo(HaveOccurred(), "the serving certificate chains to the caBundle for %s", name)
	}
	f.g.Expect(serving.DNSNames).To(Equal(opts.DNSNames))
	f.g.Expect(serving.IPAddresses).To(HaveLen(1))
	f.g.Expect(serving.IPAddresses[0].Equal(net.ParseIP("127.0.0.1"))).To(BeTrue())

	f.g.Expect(f.readFile(opts.CertDir, "tls.crt")).To(Equal(s.Data[corev1.TLSCertKey]))
	f.g.Expect(f.readFile(opts.CertDir, "tls.key")).To(Equal(s.Data[corev1.TLSPrivateKeyKey]))
}

func TestEnsureTwiceChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.createConfigurations()
	f.ensure(f.opts)
	versions := f.resourceVersions()
	certFile, err := os.Stat(filepath.Join(f.opts.CertDir, "tls.crt"))
	f.g.Expect(err).NotTo(HaveOccurred())

	f.ensure(f.opts)

	f.g.Expect(f.resourceVersions()).To(Equal(versions), "neither the Secret nor a configuration was written")
	again, err := os.Stat(filepath.Join(f.opts.CertDir, "tls.crt"))
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(os.SameFile(certFile, again)).To(BeTrue(), "the certificate file was not replaced")
}

func TestEnsureReissuesTheServingCertificateForChangedDNSNamesButKeepsTheCA(t *testing.T) {
	f := newFixture(t)
	f.createConfigurations()
	f.ensure(f.opts)
	before := f.secret()
	configVersions := f.resourceVersions()[1:]

	opts := f.opts
	opts.DNSNames = append([]string{"cafe-webhook-service." + opts.Namespace + ".svc.cluster.local"}, opts.DNSNames...)
	f.ensure(opts)

	after := f.secret()
	f.g.Expect(after.Data["ca.crt"]).To(Equal(before.Data["ca.crt"]), "the CA is kept")
	f.g.Expect(after.Data["ca.key"]).To(Equal(before.Data["ca.key"]))
	f.g.Expect(after.Data[corev1.TLSCertKey]).NotTo(Equal(before.Data[corev1.TLSCertKey]))
	serving := parseCert(t, after.Data[corev1.TLSCertKey])
	f.g.Expect(serving.DNSNames).To(ConsistOf(opts.DNSNames))
	_, err := serving.Verify(x509.VerifyOptions{Roots: pool(t, f.caBundles()[0]), DNSName: opts.DNSNames[0]})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.resourceVersions()[1:]).To(Equal(configVersions), "a stable CA leaves the caBundles alone")
	f.g.Expect(f.readFile(opts.CertDir, "tls.crt")).To(Equal(after.Data[corev1.TLSCertKey]))
	f.g.Expect(f.readFile(opts.CertDir, "tls.key")).To(Equal(after.Data[corev1.TLSPrivateKeyKey]))
}

func TestEnsureRenewsTheServingCertificateOnlyWithinTheRenewalWindow(t *testing.T) {
	f := newFixture(t)
	f.createConfigurations()
	f.ensure(f.opts)
	before := f.secret()
	notAfter := parseCert(t, before.Data[corev1.TLSCertKey]).NotAfter
	windowStart := notAfter.Add(-certs.DefaultRenewBefore)

	justBefore := f.opts
	justBefore.Clock = func() time.Time { return windowStart.Add(-time.Minute) }
	f.ensure(justBefore)
	f.g.Expect(f.secret().ResourceVersion).To(Equal(before.ResourceVersion), "not renewed before the window opens")

	within := f.opts
	within.Clock = func() time.Time { return windowStart.Add(time.Minute) }
	f.ensure(within)

	after := f.secret()
	renewed := parseCert(t, after.Data[corev1.TLSCertKey])
	f.g.Expect(renewed.NotAfter).To(BeTemporally(">", notAfter))
	f.g.Expect(after.Data["ca.crt"]).To(Equal(before.Data["ca.crt"]), "the CA is kept")
	_, err := renewed.Verify(x509.VerifyOptions{Roots: pool(t, f.caBundles()[0]), DNSName: f.opts.DNSNames[0], CurrentTime: within.Clock()})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.readFile(f.opts.CertDir, "tls.crt")).To(Equal(after.Data[corev1.TLSCertKey]))
}

func TestEnsureRotatesAnExpiringCAWhileStillTrustingTheOldOne(t *testing.T) {
	f := newFixture(t)
	f.createConfigurations()
	f.ensure(f.opts)
	before := f.secret()
	oldCA := parseCert(t, before.Data["ca.crt"])
	oldServing := parseCert(t, before.Data[corev1.TLSCertKey])

	rotated := f.opts
	rotated.Clock = func() time.Time { return oldCA.NotAfter.Add(-certs.DefaultRenewBefore + time.Hour) }
	f.ensure(rotated)

	after := f.secret()
	newCA := parseCert(t, after.Data["ca.crt"])
	f.g.Expect(newCA.Equal(oldCA)).To(BeFalse(), "the CA was replaced")
	for _, b := range f.caBundles() {
		f.g.Expect(b).To(Equal(after.Data["ca.crt"]))
	}
	trusted := pool(t, f.caBundles()[0])
	_, err := oldServing.Verify(x509.VerifyOptions{Roots: trusted, DNSName: f.opts.DNSNames[0]})
	f.g.Expect(err).NotTo(HaveOccurred(), "a replica still serving the old certificate stays trusted")
	_, err = parseCert(t, after.Data[corev1.TLSCertKey]).Verify(x509.VerifyOptions{Roots: trusted, DNSName: f.opts.DNSNames[0], CurrentTime: rotated.Clock()})
	f.g.Expect(err).NotTo(HaveOccurred(), "the new certificate is trusted")
}

func TestEnsurePatchesConfigurationsInstalledLaterAndRestoresAnOverwrittenCABundle(t *testing.T) {
	f := newFixture(t)
	f.ensure(f.opts)

	f.createConfigurations()
	f.ensure(f.opts)
	ca := f.secret().Data["ca.crt"]
	for _, b := range f.caBundles() {
		f.g.Expect(b).To(Equal(ca))
	}

	// Reapplying the manifests empties the caBundle again.
	v := f.validating()
	v.Webhooks[1].ClientConfig.CABundle = nil
	f.g.Expect(k8sClient.Update(f.ctx, v)).To(Succeed())
	f.ensure(f.opts)
	for _, b := range f.caBundles() {
		f.g.Expect(b).To(Equal(ca))
	}
}

func TestEnsureFromRacingReplicasConvergesOnOneCAAndOneCertificate(t *testing.T) {
	f := newFixture(t)
	f.createConfigurations()
	const replicas = 8
	dirs := make([]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		opts := f.opts
		opts.CertDir = filepath.Join(t.TempDir(), "replica")
		dirs[i] = opts.CertDir
		wg.Go(func() { errs[i] = certs.Ensure(f.ctx, k8sClient, opts) })
	}
	wg.Wait()
	for i, err := range errs {
		f.g.Expect(err).NotTo(HaveOccurred(), "replica %d", i)
	}

	s := f.secret()
	f.g.Expect(certificatesIn(t, s.Data["ca.crt"])).To(HaveLen(1), "one CA, not one per replica")
	for _, b := range f.caBundles() {
		f.g.Expect(b).To(Equal(s.Data["ca.crt"]))
	}
	for i, dir := range dirs {
		f.g.Expect(f.readFile(dir, "tls.crt")).To(Equal(s.Data[corev1.TLSCertKey]), "replica %d serves the stored certificate", i)
		f.g.Expect(f.readFile(dir, "tls.key")).To(Equal(s.Data[corev1.TLSPrivateKeyKey]), "replica %d", i)
	}
}

func TestEnsureNamesTheSecretWhenItFails(t *testing.T) {
	f := newFixture(t)
	opts := f.opts
	opts.Namespace = f.opts.Namespace + "-missing"
	err := certs.Ensure(context.Background(), k8sClient, opts)
	f.g.Expect(err).To(MatchError(ContainSubstring("Secret " + opts.Namespace + "/cafe-webhook-cert")))
	_, statErr := os.Stat(filepath.Join(opts.CertDir, "tls.crt"))
	f.g.Expect(os.IsNotExist(statErr)).To(BeTrue(), "no files without a stored certificate")
}
