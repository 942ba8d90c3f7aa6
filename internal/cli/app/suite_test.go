package app

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// k8sClient talks to a real kube-apiserver (envtest on the project's own
// binaries) with CAFE's CRDs installed and no controller or webhook
// running: each test writes the revisions and statuses the controller
// would, runs a command and checks what it left on the server.
var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

func apiTest(t *testing.T) (context.Context, *WithT, string) {
	t.Helper()
	framework.RequireAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx, NewWithT(t), framework.CreateNamespace(t, k8sClient)
}

type result struct {
	Out, ErrOut string
	Err         error
}

// run runs `cafe app <args> --namespace=ns` with k8sClient.
func run(ctx context.Context, ns string, args ...string) result {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.Client = k8sClient
	cmd := NewCmdWithOptions(o)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(append(args, "--namespace="+ns))
	err := cmd.ExecuteContext(ctx)
	return result{Out: out.String(), ErrOut: errOut.String(), Err: err}
}

// createApp creates an app of image; nothing reconciles it here.
func createApp(ctx context.Context, g Gomega, ns, name, image string) *cafev1alpha1.CafeAppService {
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}},
			Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](3), Topology: cafev1alpha1.Topology{Values: []string{"zone-a"}}},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	return app
}

// createRevision records revision n of app as the controller would, with
// the given image, config and outcome; succeeded sets lastSucceededAt
// that many seconds after a fixed time.
func createRevision(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, n int64, image string, env map[string]string, outcome cafev1alpha1.ReleaseOutcome, succeeded int) *cafev1alpha1.AppRevision {
	rev := &cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: cafev1alpha1.AppRevisionName(app.Name, n), Labels: map[string]string{cafev1alpha1.AppLabel: app.Name}},
		Spec: cafev1alpha1.AppRevisionSpec{
			App: app.Name, Number: n, Hash: "h" + image,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}},
			Config:   cafev1alpha1.AppConfig{Env: env, Files: map[string]string{"app.yaml": "limit: 10\nmode: a\n"}},
		},
	}
	g.Expect(controllerutil.SetControllerReference(app, rev, scheme.New())).To(Succeed())
	g.Expect(k8sClient.Create(ctx, rev)).To(Succeed())
	rev.Status.Outcome = outcome
	if succeeded > 0 {
		rev.Status.LastSucceededAt = ptr.To(metav1.NewTime(time.Date(2026, 1, 1, 0, 0, succeeded, 0, time.UTC)))
	}
	g.Expect(k8sClient.Status().Update(ctx, rev)).To(Succeed())
	return rev
}

func stored(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService) *cafev1alpha1.CafeAppService {
	out := &cafev1alpha1.CafeAppService{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(app), out)).To(Succeed())
	return out
}
