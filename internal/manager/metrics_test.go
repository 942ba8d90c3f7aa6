package manager_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/test/framework"
)

var cfg *rest.Config

func TestMain(m *testing.M) {
	os.Exit(framework.EnvtestMain(m, func(c *rest.Config) error {
		cfg = c
		// The shipped roles, cafe-metrics-reader among them.
		return install.CAFE(context.Background(), c)
	}))
}

// Review finding 6 (and 13): the manager's /metrics answers only callers
// the API server authenticates and authorizes for get on /metrics (the
// shipped cafe-metrics-reader ClusterRole): no token is 401, a token
// without the role 403, a reader's token 200.
func TestSecurityF6_MetricsNeedAuth(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ports, err := controlplane.FreePorts(1)
	g.Expect(err).NotTo(HaveOccurred())
	url := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/metrics"
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "127.0.0.1:" + strconv.Itoa(ports[0]), SkipControllerNameValidation: true})
	g.Expect(err).NotTo(HaveOccurred())
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() { stop(); <-done }()

	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	ns := framework.CreateNamespace(t, mustClient(t))
	token := func(sa string) string {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return tr.Status.Token
	}
	stranger, prometheus := token("stranger"), token("prometheus")
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cafe-metrics-reader-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cafe-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	// The endpoint's own certificate is self-signed: this test checks who
	// may read, not whom it talks to.
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		g.Expect(err).NotTo(HaveOccurred())
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The server starts with the manager: wait until it answers at all.
	g.Eventually(func() int { code, _ := get(""); return code }, time.Minute, 100*time.Millisecond).ShouldNot(BeZero())

	code, body := get("")
	g.Expect(code).To(Equal(http.StatusUnauthorized), "no token: %s", body)
	code, body = get(stranger)
	g.Expect(code).To(Equal(http.StatusForbidden), "a token without cafe-metrics-reader: %s", body)
	g.Eventually(func() int { code, _ := get(prometheus); return code }, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
	_, body = get(prometheus)
	g.Expect(strings.Contains(body, "cafe_nodelifecycle_migrations_total")).To(BeTrue(), "the reader gets the manager's metrics")
}

func mustClient(t *testing.T) client.Client {
	t.Helper()
	c, err := framework.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
