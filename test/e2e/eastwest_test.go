package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/test/framework"
)

// eastWestRate is the steady call rate of the consumer app: requests/s to
// its /call, each one call of the app under release through the registry.
const eastWestRate = 50

// consumerLag is how late the consumer applies the registry's changes
// (demo-app --registry-apply-delay): longer than the gateway's drain, so
// that only the registry provider's wait for the consumer's
// acknowledgement keeps its calls off an instance being stopped.
const consumerLag = 3 * time.Second

// consumer is the demo app (v1) run as a consumer of an app through the
// shared registry: its /call picks an instance of the app, pod or VM,
// client-side, and forwards one request to it. It runs on loopback in the
// machine's own network namespace: from a classic host's namespace only
// the host's end of its link is reachable, not the registry on loopback
// (docs/classic-hosts.md).
type consumer struct {
	url string
	svc registry.Service
}

// startConsumer starts the consumer of the app's Service, lagging by
// consumerLag, and returns once it has called the app through the
// registry; it stops at the test's end.
func startConsumer(ctx context.Context, t *testing.T, g Gomega, a *trafficApp) *consumer {
	t.Helper()
	bin, err := framework.DemoAppBinary()
	g.Expect(err).NotTo(HaveOccurred())
	ports, err := controlplane.FreePorts(1)
	g.Expect(err).NotTo(HaveOccurred())
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	svc := registry.Service{Namespace: a.ns, Name: a.name}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "consumer.log"))
	g.Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(bin, "--listen", listen, "--version", "v1", "--name", "consumer-of-"+a.name, "--namespace", a.ns,
		"--registry", env.ControlPlane.RegistryURL(), "--call-service", svc.String(), "--registry-apply-delay", consumerLag.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("consumer log:\n%s", out)
		}
	})
	c := &consumer{url: "http://" + listen, svc: svc}
	g.Eventually(func() int {
		resp, err := http.Get(c.url + "/call")
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}).Should(Equal(http.StatusOK), "the consumer calls %s through the registry", svc)
	return c
}

// startLoad calls the app through the consumer at eastWestRate until stop.
func (c *consumer) startLoad(ctx context.Context, t *testing.T, g Gomega) *load {
	return startLoadAt(ctx, t, g, "the consumer (east-west, registry)", loadgen.Config{URL: c.url + "/call", Rate: eastWestRate, Timeout: 10 * time.Second})
}

// registryClient is a client of the shared control plane's registry for
// the test's reads.
func registryClient(t *testing.T, g Gomega) *clientv3.Client {
	reg, err := clientv3.New(clientv3.Config{Endpoints: []string{env.ControlPlane.RegistryURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// registered lists the kinds and names registered for the service.
func registered(ctx context.Context, g Gomega, reg *clientv3.Client, svc registry.Service) map[string]string {
	resp, err := reg.Get(ctx, registry.InstancesPrefix(svc), clientv3.WithPrefix())
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		r, err := registry.DecodeRegistration(string(kv.Key), kv.Value)
		g.Expect(err).NotTo(HaveOccurred())
		out[r.Name] = r.Kind
	}
	return out
}
