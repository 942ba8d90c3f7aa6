package certs

import (
	"crypto/x509"
	"errors"
	"maps"
	"net"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

const renewBefore = DefaultRenewBefore

func TestCARenewalReason(t *testing.T) {
	ca := mustCA(t, t0, DefaultCAValidity)
	notCA := mustServing(t, ca, newSANs([]string{"a.svc"}, nil), t0, DefaultCertValidity)
	tests := []struct {
		name       string
		ca         *keyPair
		parseErr   error
		now        time.Time
		wantReason string // a substring; "" means the CA is kept
	}{
		{name: "a fresh CA is kept", ca: ca, now: t0},
		{name: "a CA one second outside the renewal window is kept", ca: ca, now: ca.cert.NotAfter.Add(-renewBefore - time.Second)},
		{name: "a CA exactly at the renewal window is replaced", ca: ca, now: ca.cert.NotAfter.Add(-renewBefore), wantReason: "within the renewal window"},
		{name: "an expired CA is replaced", ca: ca, now: ca.cert.NotAfter.Add(time.Hour), wantReason: "within the renewal window"},
		{name: "a CA not valid yet is replaced", ca: ca, now: t0.Add(-time.Hour), wantReason: "not valid before"},
		{name: "a missing or unreadable CA is replaced", parseErr: errors.New("missing"), now: t0, wantReason: "CA is unusable: missing"},
		{name: "a certificate that may not sign is replaced", ca: notCA, now: t0, wantReason: "may not sign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			reason := caRenewalReason(tt.ca, tt.parseErr, tt.now, renewBefore)
			if tt.wantReason == "" {
				g.Expect(reason).To(BeEmpty())
			} else {
				g.Expect(reason).To(ContainSubstring(tt.wantReason))
			}
		})
	}
}

func TestServingRenewalReason(t *testing.T) {
	ca := mustCA(t, t0, DefaultCAValidity)
	otherCA := mustCA(t, t0, DefaultCAValidity)
	want := newSANs([]string{"cafe-webhook-service.cafe-system.svc"}, []net.IP{net.ParseIP("127.0.0.1")})
	serving := mustServing(t, ca, want, t0, DefaultCertValidity)
	byOtherCA := mustServing(t, otherCA, want, t0, DefaultCertValidity)
	clientCert, err := sign(&x509.Certificate{
		DNSNames:    want.dns,
		IPAddresses: want.ipAddresses(),
		NotBefore:   t0,
		NotAfter:    t0.Add(DefaultCertValidity),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		serving    *keyPair
		parseErr   error
		want       sans
		now        time.Time
		wantReason string // a substring; "" means the certificate is kept
	}{
		{name: "a fresh certificate for the same SANs is kept", serving: serving, want: want, now: t0},
		{
			name:    "the same SANs in another order are kept",
			serving: serving, now: t0,
			want: newSANs([]string{"CAFE-webhook-service.cafe-system.svc"}, []net.IP{net.IPv4(127, 0, 0, 1)}),
		},
		{name: "a certificate one second outside the renewal window is kept", serving: serving, want: want, now: serving.cert.NotAfter.Add(-renewBefore - time.Second)},
		{name: "a certificate exactly at the renewal window is renewed", serving: serving, want: want, now: serving.cert.NotAfter.Add(-renewBefore), wantReason: "within the renewal window"},
		{name: "an expired certificate is renewed", serving: serving, want: want, now: serving.cert.NotAfter.Add(time.Second), wantReason: "within the renewal window"},
		{name: "a certificate not valid yet is re-issued", serving: serving, want: want, now: t0.Add(-time.Hour), wantReason: "not valid before"},
		{
			name:    "an added DNS name re-issues the certificate",
			serving: serving, now: t0, wantReason: "SANs",
			want: newSANs([]string{"cafe-webhook-service.cafe-system.svc", "cafe-webhook-service.cafe-system.svc.cluster.local"}, []net.IP{net.ParseIP("127.0.0.1")}),
		},
		{
			name:    "a removed IP address re-issues the certificate",
			serving: serving, now: t0, wantReason: "SANs",
			want: newSANs([]string{"cafe-webhook-service.cafe-system.svc"}, nil),
		},
		{
			name:    "a changed IP address re-issues the certificate",
			serving: serving, now: t0, wantReason: "SANs",
			want: newSANs([]string{"cafe-webhook-service.cafe-system.svc"}, []net.IP{net.ParseIP("10.0.0.1")}),
		},
		{name: "a certificate signed by another CA is re-issued", serving: byOtherCA, want: want, now: t0, wantReason: "not signed by the current CA"},
		{name: "a client certificate is re-issued", serving: clientCert, want: want, now: t0, wantReason: "not for server authentication"},
		{name: "a missing or unreadable certificate is re-issued", parseErr: errors.New("missing"), want: want, now: t0, wantReason: "unusable: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			reason := servingRenewalReason(tt.serving, tt.parseErr, ca.cert, tt.want, tt.now, renewBefore)
			if tt.wantReason == "" {
				g.Expect(reason).To(BeEmpty())
			} else {
				g.Expect(reason).To(ContainSubstring(tt.wantReason))
			}
		})
	}
}

func TestParseKeyPairRejectsAKeyOfAnotherCertificate(t *testing.T) {
	g := NewWithT(t)
	one, two := mustCA(t, t0, DefaultCAValidity), mustCA(t, t0, DefaultCAValidity)
	_, err := parseKeyPair(one.certPEM, two.keyPEM)
	g.Expect(err).To(MatchError(ContainSubstring("does not match")))
	_, err = parseKeyPair(nil, one.keyPEM)
	g.Expect(err).To(MatchError("missing"))
}

func testOptions() Options {
	o, err := Options{
		Namespace:   "cafe-system",
		SecretName:  "cafe-webhook-cert",
		DNSNames:    []string{"cafe-webhook-service.cafe-system.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		CertDir:     "/unused",
	}.complete()
	if err != nil {
		panic(err)
	}
	return o
}

// secretState is the Secret data, parsed for assertions.
type secretState struct {
	bundle  []*x509.Certificate
	ca      *keyPair
	serving *keyPair
}

func parseState(t *testing.T, data map[string][]byte) secretState {
	t.Helper()
	ca, err := parseKeyPair(data[caCertKey], data[caKeyKey])
	if err != nil {
		t.Fatalf("reading CA: %v", err)
	}
	serving, err := parseKeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatalf("reading serving certificate: %v", err)
	}
	return secretState{bundle: parseCertificates(data[caCertKey]), ca: ca, serving: serving}
}

func TestPlanSecret(t *testing.T) {
	o := testOptions()
	initial, err := planSecret(nil, o, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := parseState(t, initial.data)
	caExpiring := first.ca.cert.NotAfter.Add(-renewBefore + time.Hour)

	tests := []struct {
		name string
		// current is the Secret data to plan from.
		current func(t *testing.T) map[string][]byte
		options func(o *Options)
		now     time.Time
		check   func(g *WithT, before map[string][]byte, p plan, after secretState)
	}{
		{
			name:    "a Secret without data gets a CA and a serving certificate for the SANs",
			current: func(*testing.T) map[string][]byte { return nil },
			now:     t0,
			check: func(g *WithT, _ map[string][]byte, p plan, after secretState) {
				g.Expect(p.caReason).To(ContainSubstring("missing"))
				g.Expect(p.servingReason).NotTo(BeEmpty())
				g.Expect(p.data).To(HaveLen(4))
				g.Expect(after.bundle).To(HaveLen(1))
				g.Expect(after.serving.cert.CheckSignatureFrom(after.ca.cert)).To(Succeed())
				g.Expect(sansOf(after.serving.cert).equal(newSANs(o.DNSNames, o.IPAddresses))).To(BeTrue())
			},
		},
		{
			name:    "a Secret in the desired state is left byte for byte as it is",
			current: func(*testing.T) map[string][]byte { return maps.Clone(initial.data) },
			now:     t0.Add(24 * time.Hour),
			check: func(g *WithT, before map[string][]byte, p plan, _ secretState) {
				g.Expect(p.caReason).To(BeEmpty())
				g.Expect(p.servingReason).To(BeEmpty())
				g.Expect(upToDate(before, p.data)).To(BeTrue())
			},
		},
		{
			name:    "changed DNS names re-issue the serving certificate under the same CA",
			current: func(*testing.T) map[string][]byte { return maps.Clone(initial.data) },
			options: func(o *Options) {
				o.DNSNames = append(o.DNSNames, "cafe-webhook-service.cafe-system.svc.cluster.local")
			},
			now: t0.Add(time.Hour),
			check: func(g *WithT, before map[string][]byte, p plan, after secretState) {
				g.Expect(p.caReason).To(BeEmpty())
				g.Expect(p.servingReason).To(ContainSubstring("SANs"))
				g.Expect(p.data[caCertKey]).To(Equal(before[caCertKey]))
				g.Expect(p.data[caKeyKey]).To(Equal(before[caKeyKey]))
				g.Expect(after.serving.cert.DNSNames).To(ContainElement("cafe-webhook-service.cafe-system.svc.cluster.local"))
			},
		},
		{
			name:    "a serving certificate within the renewal window is renewed under the same CA",
			current: func(*testing.T) map[string][]byte { return maps.Clone(initial.data) },
			now:     first.serving.cert.NotAfter.Add(-renewBefore + time.Hour),
			check: func(g *WithT, before map[string][]byte, p plan, after secretState) {
				g.Expect(p.caReason).To(BeEmpty())
				g.Expect(p.servingReason).To(ContainSubstring("renewal window"))
				g.Expect(p.data[caCertKey]).To(Equal(before[caCertKey]))
				g.Expect(after.serving.cert.NotAfter).To(BeTemporally(">", first.serving.cert.NotAfter))
			},
		},
		{
			name:    "an expiring CA is replaced and stays in the bundle, so certificates it signed stay trusted",
			current: func(*testing.T) map[string][]byte { return maps.Clone(initial.data) },
			now:     caExpiring,
			check: func(g *WithT, _ map[string][]byte, p plan, after secretState) {
				g.Expect(p.caReason).To(ContainSubstring("renewal window"))
				g.Expect(p.servingReason).To(ContainSubstring("not signed by the current CA"))
				g.Expect(after.bundle).To(HaveLen(2))
				g.Expect(after.bundle[0].Equal(after.ca.cert)).To(BeTrue(), "the signing CA comes first")
				g.Expect(after.bundle[1].Equal(first.ca.cert)).To(BeTrue(), "the old CA follows")
				g.Expect(after.serving.cert.CheckSignatureFrom(after.ca.cert)).To(Succeed())
			},
		},
		{
			name: "an earlier CA is dropped from the bundle once it has expired",
			current: func(t *testing.T) map[string][]byte {
				rotated, err := planSecret(initial.data, o, caExpiring)
				if err != nil {
					t.Fatal(err)
				}
				return rotated.data
			},
			now: first.ca.cert.NotAfter.Add(time.Second),
			check: func(g *WithT, before map[string][]byte, p plan, after secretState) {
				g.Expect(p.caReason).To(BeEmpty())
				g.Expect(p.servingReason).To(BeEmpty())
				g.Expect(after.bundle).To(HaveLen(1))
				g.Expect(after.bundle[0].Equal(first.ca.cert)).To(BeFalse())
				g.Expect(p.data[caKeyKey]).To(Equal(before[caKeyKey]))
			},
		},
		{
			name: "a CA key that does not match the CA certificate replaces the CA",
			current: func(*testing.T) map[string][]byte {
				d := maps.Clone(initial.data)
				d[caKeyKey] = d[corev1.TLSPrivateKeyKey]
				return d
			},
			now: t0,
			check: func(g *WithT, before map[string][]byte, p plan, after secretState) {
				g.Expect(p.caReason).To(ContainSubstring("unusable"))
				g.Expect(after.ca.cert.Equal(first.ca.cert)).To(BeFalse())
				g.Expect(after.serving.cert.CheckSignatureFrom(after.ca.cert)).To(Succeed())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			opts := o
			opts.DNSNames = append([]string(nil), o.DNSNames...)
			if tt.options != nil {
				tt.options(&opts)
			}
			before := tt.current(t)
			p, err := planSecret(before, opts, tt.now)
			g.Expect(err).NotTo(HaveOccurred())
			tt.check(g, before, p, parseState(t, p.data))
			again, err := planSecret(p.data, opts, tt.now)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(again.caReason+again.servingReason).To(BeEmpty(), "a plan is stable once stored")
			g.Expect(upToDate(p.data, again.data)).To(BeTrue(), "a plan is stable once stored")
		})
	}
}

func TestSafeToServe(t *testing.T) {
	ca, otherCA := mustCA(t, t0, DefaultCAValidity), mustCA(t, t0, DefaultCAValidity)
	s := newSANs([]string{"a.svc"}, nil)
	tests := []struct {
		name   string
		onDisk []byte
		now    time.Time
		want   bool
	}{
		{name: "nothing on disk is safe to replace", onDisk: nil, now: t0, want: true},
		{name: "an unreadable file is safe to replace", onDisk: []byte("not PEM"), now: t0, want: true},
		{name: "a certificate signed by the same CA is safe to replace", onDisk: mustServing(t, ca, s, t0, DefaultCertValidity).certPEM, now: t0, want: true},
		{name: "a valid certificate signed by another CA is kept", onDisk: mustServing(t, otherCA, s, t0, DefaultCertValidity).certPEM, now: t0, want: false},
		{name: "an expired certificate signed by another CA is safe to replace", onDisk: mustServing(t, otherCA, s, t0, time.Hour).certPEM, now: t0.Add(2 * time.Hour), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(safeToServe(tt.onDisk, ca.cert, tt.now)).To(Equal(tt.want))
		})
	}
}

func TestOptionsComplete(t *testing.T) {
	valid := Options{Namespace: "ns", SecretName: "s", DNSNames: []string{"a.svc"}, CertDir: "/tmp/x"}
	tests := []struct {
		name    string
		mutate  func(o *Options)
		wantErr string // "" means valid
	}{
		{name: "zero durations and clock take the defaults", mutate: func(*Options) {}},
		{name: "IP addresses alone are enough SANs", mutate: func(o *Options) { o.DNSNames, o.IPAddresses = nil, []net.IP{net.ParseIP("127.0.0.1")} }},
		{name: "a missing Secret name is rejected", mutate: func(o *Options) { o.SecretName = "" }, wantErr: "secret name"},
		{name: "no SANs at all are rejected", mutate: func(o *Options) { o.DNSNames = nil }, wantErr: "DNS name or IP address"},
		{name: "a missing certificate directory is rejected", mutate: func(o *Options) { o.CertDir = "" }, wantErr: "certificate directory"},
		{name: "a renewal window as long as the certificate validity is rejected", mutate: func(o *Options) { o.CertValidity = DefaultRenewBefore }, wantErr: "renewal window"},
		{name: "a renewal window beyond the CA validity is rejected", mutate: func(o *Options) { o.CAValidity = time.Hour }, wantErr: "renewal window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := valid
			tt.mutate(&o)
			got, err := o.complete()
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.CAValidity).To(Equal(DefaultCAValidity))
			g.Expect(got.CertValidity).To(Equal(DefaultCertValidity))
			g.Expect(got.RenewBefore).To(Equal(DefaultRenewBefore))
			g.Expect(got.Clock).NotTo(BeNil())
		})
	}
}
