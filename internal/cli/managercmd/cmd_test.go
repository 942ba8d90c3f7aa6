package managercmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/traffic/gateway"
)

// The gateway traffic provider is off without --gateway-api-url, reads
// Traefik at a loopback URL, and refuses any other address.
func TestGatewayProviderFlags(t *testing.T) {
	g := NewWithT(t)
	parse := func(args ...string) *options {
		cmd := NewCmd(genericiooptions.NewTestIOStreamsDiscard())
		g.Expect(cmd.ParseFlags(args)).To(Succeed())
		// The flags are bound to the options RunE reads.
		o := &options{}
		o.GatewayAPIURL, _ = cmd.Flags().GetString("gateway-api-url")
		o.GatewayControllerName, _ = cmd.Flags().GetString("gateway-controller-name")
		return o
	}

	off, err := parse().gatewayProvider()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(off).To(BeNil())

	on, err := parse("--gateway-api-url=http://127.0.0.1:9000").gatewayProvider()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(on.ControllerName).To(Equal(gateway.DefaultControllerName))
	g.Expect(on.Observer.String()).To(Equal("Traefik at http://127.0.0.1:9000"))

	other, err := parse("--gateway-api-url=http://127.0.0.1:9000", "--gateway-controller-name=gateway.envoyproxy.io/gatewayclass-controller").gatewayProvider()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other.ControllerName).To(Equal("gateway.envoyproxy.io/gatewayclass-controller"))

	_, err = parse("--gateway-api-url=http://10.0.0.1:9000").gatewayProvider()
	g.Expect(err).To(MatchError(ContainSubstring("loopback")))
}

// The login service is off without --directory-url or the objects source;
// on, it needs the webhook server and an issuer URL, for LDAP readable CA
// and reader password files, and a token lifetime within the API server's
// hour. The objects source takes no directory flags.
func TestLoginFlags(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	ca, reader := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "reader")
	g.Expect(os.WriteFile(ca, selfSigned(t), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(reader, []byte("s3cret\n"), 0o600)).To(Succeed())
	valid := options{IdentitySource: identityLDAP, WebhookPort: 9443, DirectoryURL: "ldaps://127.0.0.1:636", DirectoryCAFile: ca, DirectoryBase: "dc=bank,dc=example",
		DirectoryReaderPasswordFile: reader, LoginIssuerURL: "https://127.0.0.1:9443"}

	off, err := (&options{IdentitySource: identityLDAP}).loginOptions()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(off).To(BeNil())
	on, err := valid.loginOptions()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(on.Directory.ReaderPassword).To(Equal("s3cret"))
	g.Expect(on.Directory.Directory.ReaderDN()).To(Equal("cn=cafe-reader,dc=bank,dc=example"))

	noWebhook := valid
	noWebhook.WebhookPort = 0
	_, err = noWebhook.loginOptions()
	g.Expect(err).To(MatchError(ContainSubstring("--webhook-port")))
	long := valid
	long.TokenLifetime = 2 * time.Hour
	_, err = long.loginOptions()
	g.Expect(err).To(MatchError(ContainSubstring("--token-lifetime 2h0m0s: at most 1h")))
	badCA := valid
	badCA.DirectoryCAFile = reader
	_, err = badCA.loginOptions()
	g.Expect(err).To(MatchError(ContainSubstring("holds no PEM certificate")))
	issuerOnly := options{IdentitySource: identityLDAP, WebhookPort: 9443, LoginIssuerURL: "https://127.0.0.1:9443"}
	_, err = issuerOnly.loginOptions()
	g.Expect(err).To(MatchError(ContainSubstring("--login-issuer-url: the login service needs its users")))

	objects := issuerOnly
	objects.IdentitySource = identityObjects
	on, err = objects.loginOptions()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(on.Directory).To(BeNil(), "IAMUsers and IAMGroups answer")
	g.Expect(on.IssuerURL).To(Equal("https://127.0.0.1:9443"))
	objectsAndLDAP := valid
	objectsAndLDAP.IdentitySource = identityObjects
	_, err = objectsAndLDAP.loginOptions()
	g.Expect(err).To(MatchError(ContainSubstring("--directory-url: unused with --identity-source=objects")))
	unknown := valid
	unknown.IdentitySource = "kerberos"
	_, err = unknown.loginOptions()
	g.Expect(err).To(MatchError(ContainSubstring(`--identity-source "kerberos": ldap or objects`)))
}

// selfSigned is a self-signed certificate, PEM: the flags only parse it.
func selfSigned(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
