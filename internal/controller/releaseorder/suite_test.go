package releaseorder_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
)

// One real kube-apiserver and one CAFE manager (every controller, no
// webhooks): the tests write what the webhooks would stamp themselves.
var (
	k8sClient client.WithWatch
	cfg       *rest.Config
)

func TestMain(m *testing.M) {
	os.Exit(framework.ControllerSuiteMain(m, func(c client.WithWatch, rc *rest.Config) {
		k8sClient, cfg = c, rc
		// The audit signing key lives in CAFE's namespace.
		_ = c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: install.Namespace}})
	}))
}

func setup(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	return framework.ControllerTest(t, k8sClient)
}
