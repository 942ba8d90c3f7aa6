package cafeappservice_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/test/framework"
)

// The API tests share one real kube-apiserver and one CAFE manager (every
// controller, no webhooks); the tests play kubelet through the API (see
// framework.ControllerSuiteMain).
var (
	k8sClient client.WithWatch
	cfg       *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(framework.ControllerSuiteMain(m, func(c client.WithWatch, rc *rest.Config) { k8sClient, cfg = c, rc }))
}

// setup skips in -short mode and returns a bounded context, a Gomega with
// controller timeouts and a namespace of the test's own.
func setup(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	return framework.ControllerTest(t, k8sClient)
}
