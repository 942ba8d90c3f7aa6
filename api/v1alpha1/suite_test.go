package v1alpha1_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/test/framework"
)

// k8sClient talks to a real kube-apiserver (envtest on the project's own
// etcd and kube-apiserver binaries) with CAFE's CRDs installed, so schema,
// defaulting and CEL rules are checked exactly as a cluster checks them.
var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

// requireAPIServer skips a test in -short mode, where no API server runs.
func requireAPIServer(t *testing.T) { framework.RequireAPIServer(t) }

// create creates obj, which must be valid, and deletes it when the test
// ends.
func create(t *testing.T, g Gomega, obj client.Object) {
	t.Helper()
	g.ExpectWithOffset(1, k8sClient.Create(context.Background(), obj)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
}

// tryCreate creates obj, deletes it again when the API server accepted it,
// and returns the API server's answer.
func tryCreate(obj client.Object) error {
	err := k8sClient.Create(context.Background(), obj)
	if err == nil {
		_ = k8sClient.Delete(context.Background(), obj)
	}
	return err
}

// expectInvalid asserts that err is the API server's Invalid naming field.
func expectInvalid(g Gomega, err error, field string) {
	g.ExpectWithOffset(1, apierrors.IsInvalid(err)).To(BeTrue(), "expected Invalid naming %s, got %v", field, err)
	g.ExpectWithOffset(1, err.Error()).To(ContainSubstring(field))
}
