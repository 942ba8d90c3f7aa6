package releaseorder_test

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
)

// One real kube-apiserver and one CAFE manager (every controller, no
// webhooks): the tests write what the webhooks would stamp themselves.
var suite = framework.ControllerSuite{
	// The audit signing key lives in CAFE's namespace.
	Prepare: func(ctx context.Context, c client.Client) error {
		return client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: install.Namespace}}))
	},
}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
