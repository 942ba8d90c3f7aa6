package framework

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/manager"
)

// ControllerSuiteMain runs a controller package's envtest tests: one real
// kube-apiserver (envtest on the project's binaries) and one CAFE manager
// built by manager.New, as `cafe manager` builds it. Nothing else runs: no
// kubelet, no scheduler, no endpointslice controller; the tests play those
// parts through the API, so they decide when a pod runs, which image it
// reports and when an EndpointSlice lets it go. The one kubelet duty that
// must follow the controller (Ready follows the readiness gates) is played
// by GateKubelet. ready receives the client and config before the tests
// run. In -short mode nothing starts.
func ControllerSuiteMain(m *testing.M, ready func(client.WithWatch, *rest.Config)) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping API server tests in -short mode")
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	log := logr.Discard()
	if testing.Verbose() {
		log = zap.New(zap.WriteTo(os.Stderr))
	}
	ctrllog.SetLogger(log)
	env, cfg, err := StartEnvtest(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	c, err := NewClient(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := manager.New(cfg, manager.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("test-kubelet").For(&corev1.Pod{}).Complete(&GateKubelet{Client: mgr.GetClient()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer RunManager(ctx, mgr)()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "manager cache did not sync")
		return 1
	}
	ready(c, cfg)
	return m.Run()
}

// ControllerTest skips the test in -short mode, runs it in parallel, and
// returns a context bounded for one test, a Gomega with timeouts fit for a
// controller, and a namespace of the test's own.
func ControllerTest(t *testing.T, c client.Client) (context.Context, *WithT, string) {
	t.Helper()
	if c == nil {
		t.Skip("needs the API server (not started in -short mode)")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	g.SetDefaultConsistentlyDuration(time.Second)
	g.SetDefaultConsistentlyPollingInterval(50 * time.Millisecond)
	return ctx, g, CreateNamespace(t, c)
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

// RunManager starts mgr in the background and returns the function that
// stops it and waits for it to return (reporting its error on stderr):
// `defer framework.RunManager(ctx, mgr)()` in a suite's TestMain.
func RunManager(ctx context.Context, mgr ctrl.Manager) (stop func()) {
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}
}
