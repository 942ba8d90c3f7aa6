package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Identity is a client certificate subject: the API server's x509
// authenticator takes CommonName as the user name and Organization as groups.
type Identity struct {
	// Name names the kubeconfig and certificate files.
	Name   string
	User   string
	Groups []string
}

// Identities the local control plane issues certificates for. The CAFE
// manager authenticates with its ServiceAccount's user name and groups so the
// RBAC in config/rbac applies to it exactly as it would inside a cluster.
var (
	AdminIdentity             = Identity{Name: "admin", User: "cafe-admin", Groups: []string{"system:masters"}}
	ControllerManagerIdentity = Identity{Name: "kube-controller-manager", User: "system:kube-controller-manager"}
	SchedulerIdentity         = Identity{Name: "kube-scheduler", User: "system:kube-scheduler"}
	// kwok plays every kubelet; it patches pod and node status across the
	// cluster, which the Node authorizer would only allow per node.
	KwokIdentity = Identity{Name: "kwok", User: "kwok", Groups: []string{"system:masters"}}
	CafeIdentity = Identity{
		Name:   "cafe",
		User:   "system:serviceaccount:cafe-system:cafe-controller-manager",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:cafe-system", "system:authenticated"},
	}
)

// PKI holds the paths of the certificates and keys of one control plane.
type PKI struct {
	Dir string
}

func (p PKI) CACert() string            { return filepath.Join(p.Dir, "ca.crt") }
func (p PKI) CAKey() string             { return filepath.Join(p.Dir, "ca.key") }
func (p PKI) ServingCert() string       { return filepath.Join(p.Dir, "apiserver.crt") }
func (p PKI) ServingKey() string        { return filepath.Join(p.Dir, "apiserver.key") }
func (p PKI) ServiceAccountKey() string { return filepath.Join(p.Dir, "sa.key") }

// EtcdCert and EtcdKey are etcd's certificate, for serving its clients and
// its (single) peer; EtcdClientCert and EtcdClientKey the API server's
// client certificate for etcd, which accepts no client without one.
func (p PKI) EtcdCert() string          { return filepath.Join(p.Dir, "etcd.crt") }
func (p PKI) EtcdKey() string           { return filepath.Join(p.Dir, "etcd.key") }
func (p PKI) EtcdClientCert() string    { return filepath.Join(p.Dir, "apiserver-etcd-client.crt") }
func (p PKI) EtcdClientKey() string     { return filepath.Join(p.Dir, "apiserver-etcd-client.key") }
func (p PKI) ServiceAccountPub() string { return filepath.Join(p.Dir, "sa.pub") }

// DirectoryCert and DirectoryKey are the directory's (slapd's) serving
// certificate for 127.0.0.1, signed by the CA.
func (p PKI) DirectoryCert() string { return filepath.Join(p.Dir, "directory.crt") }
func (p PKI) DirectoryKey() string  { return filepath.Join(p.Dir, "directory.key") }
func (p PKI) ClientCert(id Identity) string {
	return filepath.Join(p.Dir, id.Name+".crt")
}
func (p PKI) ClientKey(id Identity) string {
	return filepath.Join(p.Dir, id.Name+".key")
}

// apiServerSANs are the names a client may use for the API server: loopback
// from the host and the in-cluster Service names a pod would use.
var apiServerSANs = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// serviceCIDR is the Service IP range; its first address is the kubernetes
// Service, which must be in the serving certificate.
const (
	serviceCIDR       = "10.96.0.0/16"
	kubernetesService = "10.96.0.1"
)

// GeneratePKI writes a fresh CA, the API server's serving certificate, the
// service-account signing key and one client certificate per identity. It
// reuses what is already there, so a kept state directory keeps working
// kubeconfigs.
func GeneratePKI(dir string, identities ...Identity) (PKI, error) {
	p := PKI{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, fmt.Errorf("creating pki directory: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(p)
	if err != nil {
		return p, err
	}
	if !exists(p.ServingCert()) {
		tmpl := leafTemplate("kube-apiserver", nil)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = apiServerSANs
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP(kubernetesService)}
		if err := issue(tmpl, caCert, caKey, p.ServingCert(), p.ServingKey()); err != nil {
			return p, fmt.Errorf("issuing apiserver serving certificate: %w", err)
		}
	}
	if err := issueEtcdCerts(p, caCert, caKey); err != nil {
		return p, err
	}
	if !exists(p.DirectoryCert()) {
		tmpl := leafTemplate("directory", nil)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		if err := issue(tmpl, caCert, caKey, p.DirectoryCert(), p.DirectoryKey()); err != nil {
			return p, fmt.Errorf("issuing the directory's certificate: %w", err)
		}
	}
	if !exists(p.ServiceAccountKey()) {
		if err := writeServiceAccountKeys(p); err != nil {
			return p, err
		}
	}
	for _, id := range identities {
		if exists(p.ClientCert(id)) {
			continue
		}
		tmpl := leafTemplate(id.User, id.Groups)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if err := issue(tmpl, caCert, caKey, p.ClientCert(id), p.ClientKey(id)); err != nil {
			return p, fmt.Errorf("issuing client certificate for %s: %w", id.Name, err)
		}
	}
	return p, nil
}

// EtcdClientTLS is the TLS configuration of a client of etcd: the API
// server's client certificate, the control plane's CA as the only root.
func (p PKI) EtcdClientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.EtcdClientCert(), p.EtcdClientKey())
	if err != nil {
		return nil, fmt.Errorf("loading the etcd client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(p.CACert())
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no certificate", p.CACert())
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// issueEtcdCerts issues what etcd's mutual TLS needs, unless present:
// without it any local user could read and write the cluster's data
// through etcd's loopback port.
func issueEtcdCerts(p PKI, caCert *x509.Certificate, caKey crypto.Signer) error {
	if !exists(p.EtcdCert()) {
		tmpl := leafTemplate("etcd", nil)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		if err := issue(tmpl, caCert, caKey, p.EtcdCert(), p.EtcdKey()); err != nil {
			return fmt.Errorf("issuing etcd's certificate: %w", err)
		}
	}
	if !exists(p.EtcdClientCert()) {
		tmpl := leafTemplate("kube-apiserver-etcd-client", nil)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if err := issue(tmpl, caCert, caKey, p.EtcdClientCert(), p.EtcdClientKey()); err != nil {
			return fmt.Errorf("issuing the API server's etcd client certificate: %w", err)
		}
	}
	return nil
}

func loadOrCreateCA(p PKI) (*x509.Certificate, crypto.Signer, error) {
	if exists(p.CACert()) && exists(p.CAKey()) {
		return loadCA(p)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "cafe-local-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signing CA: %w", err)
	}
	if err := writePEM(p.CACert(), "CERTIFICATE", der); err != nil {
		return nil, nil, err
	}
	if err := writeKey(p.CAKey(), key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func loadCA(p PKI) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(p.CACert())
	if err != nil {
		return nil, nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(p.CAKey())
	if err != nil {
		return nil, nil, fmt.Errorf("reading CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("CA files in %s are not PEM", p.Dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("CA key is not a signing key")
	}
	if err := checkCA(p, cert, signer, time.Now()); err != nil {
		return nil, nil, fmt.Errorf("the CA in %s cannot be reused (remove the state directory or run without --keep-state): %w", p.Dir, err)
	}
	return cert, signer, nil
}

// checkCA refuses a CA found in a kept state directory unless it is one
// this code would have made and nobody else could have: a CA certificate,
// valid now, whose key is the one on disk and readable by its owner only.
// Anyone who can plant a CA there can mint cluster-admin certificates.
func checkCA(p PKI, cert *x509.Certificate, key crypto.Signer, now time.Time) error {
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("ca.crt is not a CA certificate")
	}
	if now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return fmt.Errorf("ca.crt is valid from %s to %s, not now", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("ca.key does not belong to ca.crt")
	}
	info, err := os.Stat(p.CAKey())
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("ca.key is accessible to others (mode %v)", info.Mode().Perm())
	}
	return nil
}

func leafTemplate(commonName string, orgs []string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
}

func issue(tmpl, ca *x509.Certificate, caKey crypto.Signer, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der)
}

// writeServiceAccountKeys writes the RSA pair kube-apiserver signs and
// verifies service-account tokens with (RS256 is what every client accepts).
func writeServiceAccountKeys(p PKI) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating service-account key: %w", err)
	}
	if err := writeKey(p.ServiceAccountKey(), key); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("encoding service-account public key: %w", err)
	}
	return writePEM(p.ServiceAccountPub(), "PUBLIC KEY", pub)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der)
}

func writePEM(path, blockType string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(fmt.Sprintf("reading random serial: %v", err))
	}
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
