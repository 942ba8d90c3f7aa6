package framework

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/scheme"
)

// WebhookSuite is what a webhook package's admission tests share: one real
// kube-apiserver calling CAFE's admission webhooks, served by ServeWebhooks
// (no controllers run). Users the tests add through Env (AddUser) are
// authenticated by client certificate, so the identity the webhooks see is
// the API server's. A package declares one suite and runs it from
// TestMain:
//
//	var suite framework.WebhookSuite
//
//	func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
type WebhookSuite struct {
	// Main sets these before the tests run; in -short mode they stay nil.

	// Env is the envtest environment, e.g. to add users it authenticates.
	Env *envtest.Environment
	// Admin is envtest's administrator (system:masters). The webhooks'
	// manager runs as the same user, so Admin is CAFE's identity: it plays
	// CAFE's controller where a test needs an object in some state.
	Admin client.Client
}

// Main runs the package's tests against the suite's API server and
// webhooks (EnvtestWithWebhooksMain with ServeWebhooks) and returns the
// exit code for os.Exit.
func (s *WebhookSuite) Main(m *testing.M) int {
	return EnvtestWithWebhooksMain(m, func(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (func(), error) {
		admin, err := client.New(cfg, client.Options{Scheme: scheme.New()})
		if err != nil {
			return nil, err
		}
		s.Env, s.Admin = env, admin
		return ServeWebhooks(ctx, env, cfg)
	})
}

// Setup skips the test in -short mode and returns the test's context, a
// Gomega, and a namespace of the test's own (created by Admin). Unlike
// ControllerSuite.Setup it does not run the test in parallel.
func (s *WebhookSuite) Setup(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	RequireAPIServer(t)
	return t.Context(), NewWithT(t), CreateNamespace(t, s.Admin)
}

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
