package framework

import (
	"context"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/manager"
)

// ServeWebhooks installs CAFE (namespace, CRDs, RBAC with the example
// release roles) into envtest's API server and serves CAFE's admission
// webhooks from a manager of their own (manager.New with webhooks only,
// its certificates and caBundles issued by CAFE as in a cluster), where
// StartEnvtestWithWebhooks pointed the API server. The manager runs as
// cfg's user, which is therefore CAFE's identity. Use it as the start
// function of EnvtestWithWebhooksMain.
func ServeWebhooks(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (stop func(), err error) {
	// The certificate directory lives as long as the manager does.
	ctx, cancel := context.WithCancel(ctx)
	opts, err := ServeWebhooksOptions(ctx, env, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	mgr, err := manager.New(cfg, manager.Options{WebhooksOnly: true, Webhook: opts})
	if err != nil {
		cancel()
		return nil, err
	}
	stopManager, err := RunWebhookManager(ctx, mgr)
	if err != nil {
		cancel()
		return nil, err
	}
	return func() { stopManager(); cancel() }, nil
}
