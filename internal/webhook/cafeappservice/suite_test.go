package cafeappservice_test

import (
	"os"
	"testing"

	"github.com/cafe-io/cafe/test/framework"
)

// The admission tests run on a real kube-apiserver calling CAFE's webhooks
// (framework.WebhookSuite); users are authenticated by client
// certificates (envtest's AddUser), so the identity the webhooks see is
// the API server's. CAFE's webhooks run as envtest's administrator, which
// is therefore CAFE's identity here: suite.Admin plays CAFE's controller.
var suite framework.WebhookSuite

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
