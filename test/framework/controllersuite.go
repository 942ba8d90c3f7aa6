package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/webhook/certs"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// ControllerSuite is what a controller package's envtest tests share: one
// real kube-apiserver (envtest on the project's binaries) and one CAFE
// manager built by manager.New, as `cafe manager` builds it. Nothing else
// runs: no kubelet, no scheduler, no endpointslice controller; the tests
// play those parts through the API (Kubelet, for one), so they decide when
// a pod runs, which image it reports and when an EndpointSlice lets it go.
// The one kubelet duty that must follow the controller (Ready follows the
// readiness gates) is played by GateKubelet. A package declares one suite
// and runs it from TestMain:
//
//	var suite framework.ControllerSuite
//
//	func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
type ControllerSuite struct {
	// Prepare, when set, runs once the manager has started and before the
	// tests: for what every test of the package relies on (a namespace, a
	// cluster-wide policy).
	Prepare func(ctx context.Context, c client.Client) error

	// Webhooks, when set, installs CAFE (its namespace holds the webhook
	// certificate) and its admission webhook configurations, and the
	// suite's manager serves the webhooks too, as in a cluster.
	Webhooks bool

	// GatewayAPI installs the Gateway API CRDs (config/gateway-api) too.
	GatewayAPI bool

	// Options are the options the suite's manager is built with
	// (Webhook is set by the suite when Webhooks is); the zero value is
	// what every suite without traffic providers uses.
	Options manager.Options

	// Main sets these before the tests run; in -short mode they stay zero.
	Client  client.WithWatch
	Config  *rest.Config
	Kubelet Kubelet
	// Env is the envtest environment, e.g. to add users it authenticates.
	Env *envtest.Environment
}

// Main runs the package's tests against the suite's API server and manager
// and returns the exit code for os.Exit. In -short mode nothing starts and
// tests that need the API server skip (see Setup).
func (s *ControllerSuite) Main(m *testing.M) int {
	var webhooks envtest.WebhookInstallOptions
	if s.Webhooks {
		webhooks = webhookInstallOptions()
	}
	return runEnvtest(m, func(ctx context.Context) (*envtest.Environment, *rest.Config, error) {
		return startEnvtest(ctx, webhooks, s.GatewayAPI)
	}, s.start)
}

// start runs the manager and GateKubelet against the API server at cfg,
// waits for the manager's cache, fills the suite in and prepares it.
func (s *ControllerSuite) start(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (stop func(), err error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	opts := s.Options
	if s.Webhooks {
		if opts.Webhook, err = ServeWebhooksOptions(ctx, env, cfg); err != nil {
			return nil, err
		}
	}
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("test-kubelet").For(&corev1.Pod{}).Complete(&GateKubelet{Client: mgr.GetClient()}); err != nil {
		return nil, err
	}
	if s.Webhooks {
		stop, err = RunWebhookManager(ctx, mgr)
		if err != nil {
			return nil, err
		}
	} else {
		stop, _ = startManager(ctx, mgr)
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		stop()
		return nil, errors.New("manager cache did not sync")
	}
	s.Client, s.Config, s.Kubelet, s.Env = c, cfg, Kubelet{Client: c}, env
	if s.Prepare != nil {
		if err := s.Prepare(ctx, c); err != nil {
			stop()
			return nil, fmt.Errorf("preparing the suite: %w", err)
		}
	}
	return stop, nil
}

// Setup skips the test in -short mode, runs it in parallel, and returns a
// context bounded for one test, a Gomega with timeouts fit for a
// controller, and a namespace of the test's own.
func (s *ControllerSuite) Setup(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	if s.Client == nil {
		t.Skip("needs the API server (not started in -short mode)")
	}
	t.Parallel()
	return s.setup(t)
}

// SetupAlone is Setup for a test that changes what the package's tests
// share (the answers of a fake the manager was built with) and so must
// run alone: it does not call t.Parallel, and Go runs such a test to its
// end before any parallel test of the package goes past Setup.
func (s *ControllerSuite) SetupAlone(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	if s.Client == nil {
		t.Skip("needs the API server (not started in -short mode)")
	}
	return s.setup(t)
}

func (s *ControllerSuite) setup(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	g.SetDefaultConsistentlyDuration(time.Second)
	g.SetDefaultConsistentlyPollingInterval(50 * time.Millisecond)
	return ctx, g, CreateNamespace(t, s.Client)
}

// Record starts recording the namespace's pods and EndpointSlices until the
// test ends, to check the lossless protocol from the watch stream (see
// ExpectLossless).
func (s *ControllerSuite) Record(ctx context.Context, t testing.TB, g Gomega, ns string) *watchrec.Recorder {
	return Record(ctx, t, g, s.Config, ns)
}

// GateKubelet plays the part of a kubelet that follows the controller rather
// than the test: once a pod runs (it has a ContainersReady condition), its
// Ready condition is ContainersReady AND every readiness gate condition
// True, recomputed both ways. Everything else a kubelet reports the tests
// write themselves, when they choose.
type GateKubelet struct{ Client client.Client }

// Reconcile implements reconcile.Reconciler.
func (k *GateKubelet) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := k.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	containers := PodCondition(pod, corev1.ContainersReady)
	if containers == nil {
		return ctrl.Result{}, nil
	}
	ready := containers.Status == corev1.ConditionTrue
	for _, gate := range pod.Spec.ReadinessGates {
		c := PodCondition(pod, gate.ConditionType)
		ready = ready && c != nil && c.Status == corev1.ConditionTrue
	}
	want := corev1.ConditionFalse
	if ready {
		want = corev1.ConditionTrue
	}
	if c := PodCondition(pod, corev1.PodReady); c != nil && c.Status == want {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(PatchPodStatus(ctx, k.Client, pod, map[string]any{
		"conditions": []corev1.PodCondition{{Type: corev1.PodReady, Status: want, LastTransitionTime: metav1.Now()}},
	}))
}

// PatchPodStatus writes part of a pod's status with a strategic-merge patch,
// as a kubelet does: conditions merge by type, so writers of different
// conditions never conflict.
func PatchPodStatus(ctx context.Context, c client.Client, pod *corev1.Pod, status map[string]any) error {
	data, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	return c.Status().Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, data))
}

// PodCondition returns the pod's condition of type t, or nil.
func PodCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// RunWebhookManager starts mgr in the background and waits until its
// webhook server has started; it fails, and stops mgr, if mgr stops first
// or a minute passes. stop stops mgr and waits for it to return (reporting
// its error on stderr).
func RunWebhookManager(ctx context.Context, mgr ctrl.Manager) (stop func(), err error) {
	stop, exited := startManager(ctx, mgr)
	// The server's own readiness check (a listener cannot be watched).
	started := mgr.GetWebhookServer().StartedChecker()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		stop()
		return nil, err
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, errors.New("the manager stopped")
		default:
		}
		return started(req) == nil, nil
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("waiting for the webhook server: %w", err)
	}
	return stop, nil
}

// startManager starts mgr in the background. exited is closed once
// mgr.Start has returned; stop cancels it, waits for that and reports its
// error on stderr.
func startManager(ctx context.Context, mgr ctrl.Manager) (stop func(), exited <-chan struct{}) {
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var err error
	go func() {
		err = mgr.Start(mgrCtx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
		if err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}, done
}

// ServeWebhooksOptions installs CAFE (namespace, CRDs, RBAC) and returns
// the options of a manager that serves CAFE's admission webhooks where
// StartEnvtestWithWebhooks pointed the API server, with a certificate CAFE
// issues into a temporary directory (removed when ctx ends).
func ServeWebhooksOptions(ctx context.Context, env *envtest.Environment, cfg *rest.Config) (*manager.WebhookOptions, error) {
	if err := install.CAFE(ctx, cfg); err != nil {
		return nil, err
	}
	certDir, err := os.MkdirTemp("", "cafe-webhook-certs-")
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { _ = os.RemoveAll(certDir) })
	wo := env.WebhookInstallOptions
	return &manager.WebhookOptions{
		Host: wo.LocalServingHost,
		Port: wo.LocalServingPort,
		Certs: certs.Options{
			Namespace:                       install.Namespace,
			SecretName:                      install.WebhookSecretName,
			IPAddresses:                     []net.IP{net.ParseIP(wo.LocalServingHost)},
			CertDir:                         certDir,
			MutatingWebhookConfigurations:   []string{install.MutatingWebhookName},
			ValidatingWebhookConfigurations: []string{install.ValidatingWebhookName},
		},
	}, nil
}
