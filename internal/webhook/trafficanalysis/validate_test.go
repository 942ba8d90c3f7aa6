package trafficanalysis_test

// Admission on a real kube-apiserver calling CAFE's webhook, which asks a
// real Prometheus (Debian's, on loopback) to parse the queries.

import (
	"context"
	"os"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

var (
	admin      client.Client
	cfg        *rest.Config
	prometheus *controlplane.Prometheus
)

func TestMain(m *testing.M) {
	os.Exit(framework.EnvtestWithWebhooksMain(m, func(ctx context.Context, env *envtest.Environment, c *rest.Config) (func(), error) {
		dir, err := os.MkdirTemp("", "cafe-ta-prometheus-")
		if err != nil {
			return nil, err
		}
		ports, err := controlplane.FreePorts(1)
		if err != nil {
			return nil, err
		}
		if prometheus, err = controlplane.StartPrometheus(ctx, controlplane.PrometheusConfig{Dir: dir, Port: ports[0]}); err != nil {
			return nil, err
		}
		opts, err := framework.ServeWebhooksOptions(ctx, env, c)
		if err != nil {
			return nil, err
		}
		mgr, err := manager.New(c, manager.Options{WebhooksOnly: true, Webhook: opts, PrometheusURL: prometheus.URL()})
		if err != nil {
			return nil, err
		}
		stop, err := framework.RunWebhookManager(ctx, mgr)
		if err != nil {
			return nil, err
		}
		cfg = c
		if admin, err = client.New(c, client.Options{Scheme: scheme.New()}); err != nil {
			return nil, err
		}
		return func() { stop(); prometheus.Stop(); _ = os.RemoveAll(dir) }, nil
	}))
}

func analysis(ns string, queries ...string) *cafev1alpha1.TrafficAnalysis {
	a := &cafev1alpha1.TrafficAnalysis{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "check-"}}
	for i, q := range queries {
		a.Spec.Metrics = append(a.Spec.Metrics, cafev1alpha1.TrafficMetric{
			Name: "m" + string(rune('a'+i)), Query: q,
			Threshold: cafev1alpha1.TrafficThreshold{Operator: cafev1alpha1.ThresholdAtLeast, Value: "0.99"},
		})
	}
	return a
}

const goodQuery = `sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*",code!~"5.."}[30s])) / sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*"}[30s]))`

func TestQueriesPrometheusCannotParseAreRefusedNamingTheMetric(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := t.Context()
	ns := framework.CreateNamespace(t, admin)

	g.Expect(admin.Create(ctx, analysis(ns, goodQuery, `histogram_quantile(0.99, sum by (le) (rate(x_bucket{service="$stable"}[1m])))`))).To(Succeed())

	cases := []struct {
		name, query, message string
	}{
		{"an unclosed parenthesis", `sum(rate(x[30s])`, "unclosed left parenthesis"},
		{"a range where an instant vector belongs", `sum(x[30s])`, "expected type instant vector"},
		{"an unknown function", `success_rate(x)`, `unknown function with name "success_rate"`},
		{"a placeholder outside a label value that leaves no expression", `$canary{`, "parse error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			err := admin.Create(ctx, analysis(ns, goodQuery, c.query))
			g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "denied by the webhook, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring("spec.metrics[1].query"), "the second metric is the bad one")
			g.Expect(err.Error()).To(ContainSubstring("Prometheus refused the query"))
			g.Expect(err.Error()).To(ContainSubstring(c.message))
		})
	}
}

// warnings collects the API server's warnings to one client.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func TestWithPrometheusDownAnalysesAreAdmittedWithAWarning(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := t.Context()
	ns := framework.CreateNamespace(t, admin)
	w := &warnings{}
	warned := rest.CopyConfig(cfg)
	warned.WarningHandler = w
	c, err := client.New(warned, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())

	prometheus.Stop()
	t.Cleanup(func() { g.Expect(prometheus.Restart(context.Background())).To(Succeed()) })
	g.Expect(c.Create(ctx, analysis(ns, `sum(rate(x[30s])`))).To(Succeed(), "Prometheus down must not stop people writing analyses")
	g.Expect(w.seen).To(ContainElement(ContainSubstring("the queries of ma were not parsed: Prometheus at " + prometheus.URL() + " did not answer")))
}
