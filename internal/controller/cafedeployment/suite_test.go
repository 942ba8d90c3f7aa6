package cafedeployment_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/test/framework"
)

// The API tests share one real kube-apiserver (with the Gateway API CRDs,
// for traffic steps) and one CAFE manager; the tests play kubelet,
// scheduler and endpointslice controller through the API (see
// framework.ControllerSuite). The manager's traffic analyses query a real
// Prometheus (Debian's, on loopback) scraping canaryMetrics.
var suite = framework.ControllerSuite{GatewayAPI: true}

func TestMain(m *testing.M) { os.Exit(runWithPrometheus(m)) }

func runWithPrometheus(m *testing.M) int {
	app := httptest.NewServer(canaryMetrics)
	defer app.Close()
	dir, err := os.MkdirTemp("", "cafe-cd-prometheus-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ports, err := controlplane.FreePorts(1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := controlplane.StartPrometheus(ctx, controlplane.PrometheusConfig{
		Dir: dir, Port: ports[0], ScrapeInterval: time.Second,
		Jobs: []controlplane.PrometheusJob{{Name: "canary", Targets: []string{strings.TrimPrefix(app.URL, "http://")}}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.Stop()
	suite.Options.PrometheusURL = p.URL()
	return suite.Main(m)
}

// canaryMetrics serves, per namespace, the success ratio a test gives its
// canary: cafe_test_success_ratio{namespace, service}.
var canaryMetrics = &exposition{ratios: map[[2]string]string{}}

type exposition struct {
	mu     sync.Mutex
	ratios map[[2]string]string
}

// set makes the service of namespace ns report ratio.
func (e *exposition) set(ns, service, ratio string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ratios[[2]string{ns, service}] = ratio
}

func (e *exposition) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var lines []string
	for k, v := range e.ratios {
		lines = append(lines, fmt.Sprintf("cafe_test_success_ratio{namespace=%q,service=%q} %s", k[0], k[1], v))
	}
	sort.Strings(lines)
	fmt.Fprintf(w, "# TYPE cafe_test_success_ratio gauge\n%s\n", strings.Join(lines, "\n"))
}
