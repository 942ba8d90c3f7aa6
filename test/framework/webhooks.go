package framework

import (
	"context"
	"net"
	"os"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/webhook/certs"
)

// ServeCAFEWebhooks installs CAFE (namespace, CRDs, RBAC: the shipped
// roles a test binds) on the API server of env (StartEnvtestWithWebhooks)
// and serves CAFE's admission webhooks there from a webhooks-only manager,
// with the certificate and caBundles CAFE issues itself, as in a cluster.
// Use it as EnvtestWithWebhooksMain's start.
func ServeCAFEWebhooks(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (stop func(), err error) {
	if err := install.CAFE(ctx, cfg); err != nil {
		return nil, err
	}
	certDir, err := os.MkdirTemp("", "cafe-webhook-certs-")
	if err != nil {
		return nil, err
	}
	removeCerts := func() { _ = os.RemoveAll(certDir) }
	wo := env.WebhookInstallOptions
	mgr, err := manager.New(cfg, manager.Options{WebhooksOnly: true, Webhook: &manager.WebhookOptions{
		Host: wo.LocalServingHost,
		Port: wo.LocalServingPort,
		Certs: certs.Options{
			Namespace:                       install.Namespace,
			SecretName:                      install.WebhookSecretName,
			IPAddresses:                     []net.IP{net.ParseIP(wo.LocalServingHost)},
			CertDir:                         certDir,
			MutatingWebhookConfigurations:   []string{install.MutatingWebhookName},
			ValidatingWebhookConfigurations: []string{install.ValidatingWebhookName},
		},
	}})
	if err != nil {
		removeCerts()
		return nil, err
	}
	stopManager, err := RunWebhookManager(ctx, mgr)
	if err != nil {
		removeCerts()
		return nil, err
	}
	return func() { stopManager(); removeCerts() }, nil
}
