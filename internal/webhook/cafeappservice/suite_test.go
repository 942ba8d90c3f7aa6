package cafeappservice_test

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// The admission tests run on a real kube-apiserver calling CAFE's webhooks
// (framework.ServeWebhooks); users are authenticated by client
// certificates (envtest's AddUser), so the identity the webhooks see is
// the API server's. CAFE's webhooks run as envtest's administrator, which
// is therefore CAFE's identity here: admin plays CAFE's controller.
var (
	testEnv *envtest.Environment
	admin   client.Client
)

func TestMain(m *testing.M) {
	os.Exit(framework.EnvtestWithWebhooksMain(m, func(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (func(), error) {
		testEnv = env
		var err error
		if admin, err = client.New(cfg, client.Options{Scheme: scheme.New()}); err != nil {
			return nil, err
		}
		return framework.ServeWebhooks(ctx, env, cfg)
	}))
}
