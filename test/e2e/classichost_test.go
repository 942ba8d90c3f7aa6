package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
)

// A classic host enrolled with `cafe host enroll` (the cluster's real
// client signer in kube-controller-manager issues its certificate) runs
// `cafe agent` as a process: the host registers, turns Ready, and its
// credential, as the API server authenticates it, is the host's own and
// can write no other host. Deleting the host takes its Lease with it
// (the garbage collector follows the Lease's owner).
func TestClassicHostEnrolsRegistersAndIsConfinedToItself(t *testing.T) {
	ctx := testContext(t)
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(time.Minute)
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	name := "vm-e2e-" + rand.String(5)
	kubeconfig := filepath.Join(t.TempDir(), name+".kubeconfig")

	out, err := exec.CommandContext(ctx, cafeBinary(t), "host", "enroll", name, "--out", kubeconfig, "--kubeconfig", env.ControlPlane.KubeconfigPath()).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(ContainSubstring("host " + name + " enrolled"))

	agent := exec.Command(cafeBinary(t), "agent", "--kubeconfig", kubeconfig, "--host", name, "--zone", "zone-c", "--address", "127.0.43.1", "--renew-interval", "1s")
	var logs syncBuffer
	agent.Stdout, agent.Stderr = &logs, &logs
	g.Expect(agent.Start()).To(Succeed())
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGKILL)
		_ = agent.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	t.Cleanup(func() {
		_ = k8sClient.Delete(context.Background(), &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})

	host := &cafev1alpha1.ClassicHost{}
	g.Eventually(func() *metav1.Condition {
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, host); err != nil {
			return nil
		}
		return meta.FindStatusCondition(host.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition)
	}).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue)), "agent log:\n%s", &logs)
	g.Expect(host.Spec.Zone).To(Equal("zone-c"))
	g.Expect(host.Status.AgentVersion).NotTo(BeEmpty())

	list, err := exec.CommandContext(ctx, cafeBinary(t), "host", "list", "--kubeconfig", env.ControlPlane.KubeconfigPath()).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(list))
	g.Expect(hostRow(string(list), name)).To(ContainElements("zone-c", "127.0.43.1", "True", cafev1alpha1.ClassicHostReasonHeartbeating, "0/0/10"),
		"no instance ready, none placed, capacity 10")

	// The credential is the host's, as the API server sees it.
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(review.Status.UserInfo.Username).To(Equal(cafev1alpha1.ClassicHostUser(name)))
	g.Expect(review.Status.UserInfo.Groups).To(ContainElement(cafev1alpha1.ClassicHostsGroup))

	// It cannot register or change another host.
	asHost, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	other := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name + "-other"}, Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "127.0.43.2"}}
	g.Expect(asHost.Create(ctx, other)).To(And(Satisfy(apierrors.IsForbidden), MatchError(ContainSubstring("may write only its own ClassicHost"))))
	g.Expect(asHost.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: other.Name}})).To(Satisfy(apierrors.IsForbidden))

	// Removing the host (its agent stopped) removes its Lease, which the
	// host owns.
	g.Expect(agent.Process.Signal(syscall.SIGKILL)).To(Succeed())
	g.Expect(k8sClient.Delete(ctx, host)).To(Succeed())
	g.Eventually(func() bool {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: name}, &coordinationv1.Lease{})
		return apierrors.IsNotFound(err)
	}).Should(BeTrue(), "the garbage collector deletes the host's Lease")
}

// hostRow is the fields of host's row in `cafe host list`.
func hostRow(out, host string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == host {
			return f
		}
	}
	return nil
}
