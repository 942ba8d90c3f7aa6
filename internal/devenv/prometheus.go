package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
)

// The identity the control plane's Prometheus scrapes CAFE's metrics with,
// as a Prometheus in a cluster would: a ServiceAccount bound to the
// shipped metrics-reader ClusterRole (config/rbac/metrics_reader_role.yaml).
const (
	prometheusServiceAccount = "cafe-prometheus"
	metricsReaderRole        = "cafe-metrics-reader"
	// scrapeTokenTTL outlasts a dev session; every Up requests a new token.
	scrapeTokenTTL = 24 * time.Hour
)

// monitorCAFE, when the control plane runs Prometheus, points CAFE at it
// (TrafficAnalyses query it, the webhook has it parse their queries) and
// serves CAFE's metrics on a free loopback port for it to scrape, secured
// as in a cluster: TLS, and only for callers the API server authenticates
// and authorizes for get on /metrics. It grants Prometheus that and
// returns the address to scrape: "" without Prometheus, or when the caller
// configured CAFE's metrics listener itself.
func monitorCAFE(ctx context.Context, cp *controlplane.ControlPlane, admin *rest.Config, o *manager.Options) (string, error) {
	if cp.PrometheusURL() == "" {
		return "", nil
	}
	if o.PrometheusURL == "" {
		o.PrometheusURL = cp.PrometheusURL()
	}
	if o.MetricsAddr != "" && o.MetricsAddr != "0" {
		return "", nil
	}
	ports, err := controlplane.FreePorts(1)
	if err != nil {
		return "", err
	}
	o.MetricsAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	o.MetricsInsecure = false
	if err := grantPrometheus(ctx, admin, filepath.Join(cp.PrometheusDir(), controlplane.CafeScrapeTokenFile)); err != nil {
		return "", fmt.Errorf("letting Prometheus scrape CAFE: %w", err)
	}
	return o.MetricsAddr, nil
}

// grantPrometheus applies the ServiceAccount and its binding to the
// metrics-reader role, and writes a fresh token of it to tokenFile, which
// Prometheus reads on every scrape.
func grantPrometheus(ctx context.Context, admin *rest.Config, tokenFile string) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	apply := metav1.ApplyOptions{FieldManager: string(install.FieldOwner), Force: true}
	if _, err := cs.CoreV1().ServiceAccounts(install.Namespace).Apply(ctx, corev1ac.ServiceAccount(prometheusServiceAccount, install.Namespace), apply); err != nil {
		return fmt.Errorf("applying ServiceAccount %s/%s: %w", install.Namespace, prometheusServiceAccount, err)
	}
	binding := rbacv1ac.ClusterRoleBinding(prometheusServiceAccount).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(metricsReaderRole)).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithNamespace(install.Namespace).WithName(prometheusServiceAccount))
	if _, err := cs.RbacV1().ClusterRoleBindings().Apply(ctx, binding, apply); err != nil {
		return fmt.Errorf("binding %s to ClusterRole %s: %w", prometheusServiceAccount, metricsReaderRole, err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(install.Namespace).CreateToken(ctx, prometheusServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(scrapeTokenTTL / time.Second))},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token of %s/%s: %w", install.Namespace, prometheusServiceAccount, err)
	}
	// Written whole and renamed: a scrape never reads half a token.
	tmp := tokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(tr.Status.Token), 0o600); err != nil {
		return fmt.Errorf("writing Prometheus's token: %w", err)
	}
	if err := os.Rename(tmp, tokenFile); err != nil {
		return fmt.Errorf("writing Prometheus's token: %w", err)
	}
	return nil
}
