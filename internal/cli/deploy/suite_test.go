package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/deploy"
	"github.com/cafe-io/cafe/internal/revision"
	"github.com/cafe-io/cafe/test/builders"
	"github.com/cafe-io/cafe/test/framework"
)

// k8sClient talks to a real kube-apiserver (envtest on the project's own
// binaries) with CAFE's CRDs installed and no controller or webhook
// running: each test writes the status and revision history the
// controller would, then runs a command and checks what it left on the
// server.
var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

// requireAPIServer skips a test in -short mode, where no API server runs,
// and returns a context bounded for one test.
func requireAPIServer(t *testing.T) context.Context {
	t.Helper()
	framework.RequireAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// webTest is requireAPIServer, a Gomega, a namespace of the test's own and
// in it the CafeDeployment web (newCafeDeployment, image app:v1) as the
// server stored it.
func webTest(t *testing.T) (context.Context, *WithT, string, *cafev1alpha1.CafeDeployment) {
	t.Helper()
	ctx := requireAPIServer(t)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	return ctx, g, ns, create(ctx, g, newCafeDeployment(ns, "web", "app:v1"))
}

// result is what one command printed and returned.
type result struct {
	Out, ErrOut string
	Err         error
}

// run runs `cafe deploy <verb> --namespace=ns <args>` with c as its client.
func run(ctx context.Context, c client.Client, ns, verb string, args ...string) result {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := deploy.NewOptions(streams)
	o.Client = c
	cmd := deploy.NewCmdWithOptions(o)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(append([]string{verb, "--namespace=" + ns}, args...))
	err := cmd.ExecuteContext(ctx)
	return result{Out: out.String(), ErrOut: errOut.String(), Err: err}
}

// newCafeDeployment is a valid CafeDeployment of 6 pods over three zones
// running image, each group waiting for a confirmation.
func newCafeDeployment(ns, name, image string) *cafev1alpha1.CafeDeployment {
	return builders.CafeDeployment(ns, name, image, cafev1alpha1.CafeDeploymentStrategy{NeedWaitingForConfirm: ptr.To(true)})
}

// create creates cd and returns it as the server stored it.
func create(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment) *cafev1alpha1.CafeDeployment {
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	return get(ctx, g, cd)
}

func get(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment) *cafev1alpha1.CafeDeployment {
	out := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cd), out)).To(Succeed())
	return out
}

// writeStatus writes the status the controller would, through the status
// subresource, and returns the object as stored.
func writeStatus(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, mutate func(*cafev1alpha1.CafeDeploymentStatus)) *cafev1alpha1.CafeDeployment {
	current := get(ctx, g, cd)
	patch := client.MergeFrom(current.DeepCopy())
	mutate(&current.Status)
	g.Expect(k8sClient.Status().Patch(ctx, current, patch)).To(Succeed())
	return get(ctx, g, cd)
}

// waitingAt is the status of a release that finished group k of total and
// waits for a confirmation.
func waitingAt(cd *cafev1alpha1.CafeDeployment, k, total int32) func(*cafev1alpha1.CafeDeploymentStatus) {
	return func(st *cafev1alpha1.CafeDeploymentStatus) {
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		st.ObservedGeneration = cd.Generation
		st.Release = cafev1alpha1.ReleaseStatus{
			Phase: cafev1alpha1.ReleasePhaseWaitingForConfirm, CurrentGroup: ptr.To(k), TotalGroups: ptr.To(total),
		}
		for i := int32(0); i <= k; i++ {
			st.Release.Groups = append(st.Release.Groups, cafev1alpha1.ReleaseGroupStatus{Index: i, StartTime: &now, FinishTime: &now})
		}
	}
}

// recordRevision records the stored template of cd as a ControllerRevision
// numbered number, as the controller does, and returns its hash.
func recordRevision(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, number int64) string {
	stored := get(ctx, g, cd)
	hash := revision.TemplateHash(&stored.Spec.Template)
	raw, err := json.Marshal(stored.Spec.Template)
	g.Expect(err).NotTo(HaveOccurred())
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cd.Namespace, Name: cd.Name + "-" + hash,
			Labels: map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.RevisionHashLabel: hash},
		},
		Data:     runtime.RawExtension{Raw: raw},
		Revision: number,
	}
	g.Expect(controllerutil.SetControllerReference(stored, rev, k8sClient.Scheme())).To(Succeed())
	g.Expect(k8sClient.Create(ctx, rev)).To(Succeed())
	return hash
}

// setImage changes the template's image, as a new release does.
func setImage(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, image string) {
	current := get(ctx, g, cd)
	patch := client.MergeFrom(current.DeepCopy())
	current.Spec.Template.Spec.Containers[0].Image = image
	g.Expect(k8sClient.Patch(ctx, current, patch)).To(Succeed())
}

// interferingClient runs interfere once, just before the first Patch the
// command sends: another writer got there between its read and its write.
type interferingClient struct {
	client.Client
	interfere func()
	patches   int
}

func (c *interferingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.patches++
	if c.patches == 1 {
		c.interfere()
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}
