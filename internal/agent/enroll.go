package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// DefaultCredentialValidity is how long an enrolled host's certificate is
// valid unless the enrolling administrator asks otherwise.
const DefaultCredentialValidity = 365 * 24 * time.Hour

// Credential is a host's client certificate and its private key (PEM).
type Credential struct {
	CertPEM, KeyPEM []byte
}

// Enroll has the API server's client signer
// (kubernetes.io/kube-apiserver-client) issue host's credential: user
// cafe:host:<host> in group cafe:hosts. It makes a new key, submits a
// CertificateSigningRequest for it, approves it as the enrolling user (who
// must be allowed to approve for that signer; the request records who
// asked) and waits for the certificate.
func Enroll(ctx context.Context, cs kubernetes.Interface, host string, validity time.Duration) (*Credential, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the host's key: %w", err)
	}
	request, err := cert.MakeCSR(key, &pkix.Name{CommonName: cafev1alpha1.ClassicHostUser(host), Organization: []string{cafev1alpha1.ClassicHostsGroup}}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("making the certificate request: %w", err)
	}
	name, uid, err := csr.RequestCertificateWithContext(ctx, cs, request, "", certificatesv1.KubeAPIServerClientSignerName,
		&validity, []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, key)
	if err != nil {
		return nil, fmt.Errorf("requesting the certificate of host %s: %w", host, err)
	}
	if err := approve(ctx, cs, name, host); err != nil {
		return nil, err
	}
	certPEM, err := csr.WaitForCertificate(ctx, cs, name, uid)
	if err != nil {
		return nil, fmt.Errorf("waiting for certificate request %s to be signed (is the cluster's kubernetes.io/kube-apiserver-client signer running?): %w", name, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the host's key: %w", err)
	}
	return &Credential{CertPEM: certPEM, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})}, nil
}

func approve(ctx context.Context, cs kubernetes.Interface, name, host string) error {
	req, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading certificate request %s: %w", name, err)
	}
	req.Status.Conditions = append(req.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "CafeHostEnrolled", Message: "classic host " + host + " enrolled with cafe host enroll",
		LastUpdateTime: metav1.Now(),
	})
	if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, req, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("approving certificate request %s (the enrolling user needs approve on signers/%s): %w", name, certificatesv1.KubeAPIServerClientSignerName, err)
	}
	return nil
}

// Kubeconfig is a kubeconfig that reaches the API server of cfg (its
// address and CA) with the host's credential.
func (c *Credential) Kubeconfig(cfg *rest.Config, host string) (*clientcmdapi.Config, error) {
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("reading the API server's CA: %w", err)
		}
	}
	user := cafev1alpha1.ClassicHostUser(host)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cafe"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca, TLSServerName: cfg.ServerName}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertPEM, ClientKeyData: c.KeyPEM}
	kc.Contexts[user] = &clientcmdapi.Context{Cluster: "cafe", AuthInfo: user}
	kc.CurrentContext = user
	return kc, nil
}
