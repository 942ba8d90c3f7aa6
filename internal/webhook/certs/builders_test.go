package certs_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/webhook/certs"
	"github.com/cafe-io/cafe/test/framework"
)

// webhookClientConfig points admission webhooks at a URL (the webhook server on
// the host, as in local development) with an empty caBundle. They have no
// rules, so the API server never calls them during the tests.
func webhookClientConfig() admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:9443/cafe")}
}

func validatingConfiguration(name string, webhookNames ...string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, n := range webhookNames {
		c.Webhooks = append(c.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name:                    n,
			ClientConfig:            webhookClientConfig(),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		})
	}
	return c
}

func mutatingConfiguration(name string, webhookNames ...string) *admissionregistrationv1.MutatingWebhookConfiguration {
	c := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, n := range webhookNames {
		c.Webhooks = append(c.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name:                    n,
			ClientConfig:            webhookClientConfig(),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		})
	}
	return c
}

// fixture is one test's world: its namespace, the Options for Ensure, and
// cluster-scoped webhook configurations named after the namespace so tests
// never share them.
type fixture struct {
	t    *testing.T
	g    *WithT
	ctx  context.Context
	opts certs.Options
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	requireAPIServer(t)
	ns := framework.CreateNamespace(t, k8sClient)
	return &fixture{
		t:   t,
		g:   NewWithT(t),
		ctx: logr.NewContext(t.Context(), testr.New(t)),
		opts: certs.Options{
			Namespace:                       ns,
			SecretName:                      "cafe-webhook-cert",
			DNSNames:                        []string{"cafe-webhook-service." + ns + ".svc"},
			IPAddresses:                     []net.IP{net.ParseIP("127.0.0.1")},
			CertDir:                         t.TempDir(),
			MutatingWebhookConfigurations:   []string{ns + "-mutating"},
			ValidatingWebhookConfigurations: []string{ns + "-validating"},
		},
	}
}

// createConfigurations creates the webhook configurations the options name,
// with two validating webhooks and one mutating.
func (f *fixture) createConfigurations() {
	f.t.Helper()
	objs := []client.Object{
		mutatingConfiguration(f.opts.MutatingWebhookConfigurations[0], "mcafe.cafe.io"),
		validatingConfiguration(f.opts.ValidatingWebhookConfigurations[0], "vcafedeployment.cafe.io", "vinplaceset.cafe.io"),
	}
	for _, obj := range objs {
		f.g.Expect(k8sClient.Create(f.ctx, obj)).To(Succeed())
		f.t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
	}
}

func (f *fixture) ensure(opts certs.Options) {
	f.t.Helper()
	f.g.Expect(certs.Ensure(f.ctx, k8sClient, opts)).To(Succeed())
}

func (f *fixture) secret() *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	f.g.Expect(k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.opts.Namespace, Name: f.opts.SecretName}, s)).To(Succeed())
	return s
}

func (f *fixture) mutating() *admissionregistrationv1.MutatingWebhookConfiguration {
	f.t.Helper()
	c := &admissionregistrationv1.MutatingWebhookConfiguration{}
	f.g.Expect(k8sClient.Get(f.ctx, client.ObjectKey{Name: f.opts.MutatingWebhookConfigurations[0]}, c)).To(Succeed())
	return c
}

func (f *fixture) validating() *admissionregistrationv1.ValidatingWebhookConfiguration {
	f.t.Helper()
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	f.g.Expect(k8sClient.Get(f.ctx, client.ObjectKey{Name: f.opts.ValidatingWebhookConfigurations[0]}, c)).To(Succeed())
	return c
}

// caBundles returns the caBundle of every webhook of both configurations.
func (f *fixture) caBundles() [][]byte {
	f.t.Helper()
	var bundles [][]byte
	for _, w := range f.mutating().Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	for _, w := range f.validating().Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	return bundles
}

// resourceVersions of the Secret and both configurations, to show a pass wrote nothing.
func (f *fixture) resourceVersions() []string {
	f.t.Helper()
	return []string{f.secret().ResourceVersion, f.mutating().ResourceVersion, f.validating().ResourceVersion}
}

func (f *fixture) readFile(dir, name string) []byte {
	f.t.Helper()
	return readFile(f.t, dir, name)
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", data)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(t *testing.T, bundle []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(bundle) {
		t.Fatalf("no certificate in bundle %q", bundle)
	}
	return p
}

// certificatesIn returns every certificate of a PEM bundle.
func certificatesIn(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return out
		}
		out = append(out, parseCert(t, pem.EncodeToMemory(block)))
	}
}
