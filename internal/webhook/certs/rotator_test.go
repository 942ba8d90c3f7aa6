package certs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/webhook/certs"
	"github.com/cafe-io/cafe/test/framework"
)

func TestRotatorRunsOnEveryReplica(t *testing.T) {
	g := NewWithT(t)
	g.Expect((&certs.Rotator{}).NeedLeaderElection()).To(BeFalse())
}

// The Rotator starts before its namespace exists: the first pass fails and
// is logged, and a retry after the namespace appears issues the certificates.
// Then cancelling the context stops it.
func TestRotatorLogsFailuresAndRetriesUntilEnsureSucceeds(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	ns := "cafe-certs-" + utilrand.String(6)
	opts := certs.Options{
		Namespace:  ns,
		SecretName: "cafe-webhook-cert",
		DNSNames:   []string{"cafe-webhook-service." + ns + ".svc"},
		CertDir:    t.TempDir(),
	}

	failed := make(chan string, 1)
	var once sync.Once
	logger := funcr.New(func(prefix, args string) {
		if strings.Contains(args, "Failed to ensure webhook certificates") {
			once.Do(func() { failed <- args })
		}
	}, funcr.Options{})

	ctx, cancel := context.WithCancel(logr.NewContext(t.Context(), logger))
	defer cancel()
	stopped := make(chan error, 1)
	go func() {
		stopped <- (&certs.Rotator{Client: k8sClient, Options: opts}).Start(ctx)
	}()

	select {
	case args := <-failed:
		g.Expect(args).To(ContainSubstring("Secret " + ns + "/cafe-webhook-cert"))
	case <-time.After(30 * time.Second):
		t.Fatal("the failing first pass was not logged")
	}

	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	g.Expect(k8sClient.Create(t.Context(), namespace)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), namespace) })

	waitCtx, waitCancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer waitCancel()
	secrets := &corev1.SecretList{}
	err := framework.WaitForList(waitCtx, k8sClient, secrets, func(items []runtime.Object) bool {
		for _, o := range items {
			if o.(*corev1.Secret).Name == opts.SecretName {
				return true
			}
		}
		return false
	}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred(), "a retry issued the certificates")

	// Stop only once the files are written: cancelling a pass midway would
	// fail it, legitimately, before it writes them.
	s := &corev1.Secret{}
	g.Expect(k8sClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: opts.SecretName}, s)).To(Succeed())
	g.Eventually(func() ([]byte, error) {
		return os.ReadFile(filepath.Join(opts.CertDir, "tls.crt"))
	}, 10*time.Second, 50*time.Millisecond).Should(Equal(s.Data[corev1.TLSCertKey]), "the retry wrote the files")

	cancel()
	select {
	case err := <-stopped:
		g.Expect(err).NotTo(HaveOccurred())
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after the context ended")
	}
}
