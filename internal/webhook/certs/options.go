package certs

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults of the [Options] durations.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	DefaultRenewBefore  = 30 * 24 * time.Hour
)

// Options say where the certificates live and who must trust them.
type Options struct {
	// Namespace is the namespace of the Secret.
	Namespace string
	// SecretName names the Secret (type kubernetes.io/tls, plus ca.crt and
	// ca.key) holding the CA and the serving certificate.
	SecretName string
	// DNSNames are the serving certificate's DNS SANs, such as
	// cafe-webhook-service.cafe-system.svc.
	DNSNames []string
	// IPAddresses are the serving certificate's IP SANs, such as 127.0.0.1
	// when the webhook server runs on the host during local development.
	IPAddresses []net.IP
	// CertDir is where tls.crt and tls.key are written for controller-runtime's
	// webhook server, which watches the files.
	CertDir string
	// MutatingWebhookConfigurations name the configurations whose every
	// webhook's clientConfig.caBundle must carry the CA.
	MutatingWebhookConfigurations []string
	// ValidatingWebhookConfigurations, likewise.
	ValidatingWebhookConfigurations []string
	// CAValidity is how long a new CA is valid; DefaultCAValidity if zero.
	CAValidity time.Duration
	// CertValidity is how long a new serving certificate is valid (never
	// beyond its CA); DefaultCertValidity if zero.
	CertValidity time.Duration
	// RenewBefore is how long before expiry the CA and the serving
	// certificate are re-issued; DefaultRenewBefore if zero.
	RenewBefore time.Duration
	// Clock returns the current time; time.Now if nil.
	Clock func() time.Time
}

// complete returns the options with defaults filled in, or why they cannot work.
func (o Options) complete() (Options, error) {
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = DefaultRenewBefore
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	var errs []error
	if o.Namespace == "" || o.SecretName == "" {
		errs = append(errs, errors.New("namespace and secret name are required"))
	}
	if len(o.DNSNames) == 0 && len(o.IPAddresses) == 0 {
		errs = append(errs, errors.New("at least one DNS name or IP address is required"))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("a certificate directory is required"))
	}
	if o.CAValidity < 0 || o.CertValidity < 0 || o.RenewBefore < 0 {
		errs = append(errs, errors.New("validities and renewal window must be positive"))
	}
	// A certificate born inside its own renewal window would be re-issued
	// on every pass.
	if o.RenewBefore >= o.CertValidity || o.RenewBefore >= o.CAValidity {
		errs = append(errs, fmt.Errorf("renewal window %s must be shorter than the CA validity %s and the certificate validity %s", o.RenewBefore, o.CAValidity, o.CertValidity))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("invalid options for webhook certificate Secret %s/%s: %w", o.Namespace, o.SecretName, err)
	}
	return o, nil
}
