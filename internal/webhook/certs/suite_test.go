package certs_test

import (
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/test/framework"
)

// k8sClient talks to a real kube-apiserver (envtest on the project's own etcd
// and kube-apiserver), so webhook configuration validation, resourceVersion
// conflicts and AlreadyExists races behave exactly as in a cluster. It is nil
// in -short mode.
var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

// requireAPIServer skips a test in -short mode, where no API server runs.
func requireAPIServer(t *testing.T) { framework.RequireAPIServer(t) }
