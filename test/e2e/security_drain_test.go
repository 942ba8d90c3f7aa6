package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
)

// Review finding 2 on the full local control plane (kube-controller-manager
// with its garbage collector and disruption controller, scheduler, kwok
// nodes): `kubectl drain` of a node running a CafeDeployment's pod is
// answered 429 until CAFE has drained, deleted and replaced the pod
// elsewhere, then finishes; deleting the CafeDeployment lets the garbage
// collector delete its InPlaceSets, whose pods CAFE drains before they go.
// No pod is cut while an EndpointSlice lists it (watch stream).
func TestSecurityF2_KubectlDrainAndDeletingACafeDeploymentAreLossless(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "drained"}
	g.Expect(k8sClient.Create(ctx, service(ns, "drained", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "drained", 3, podLabels)
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	pods := waitForSetRollout(ctx, g, ns, podLabels, 3, "example.com/app:v1")
	g.Expect(waitForReadyEndpoints(ctx, ns, "drained", 3)).To(Succeed())
	rec := framework.Record(ctx, t, g, env.Admin, ns)

	victim := pods[0]
	node := victim.Spec.NodeName
	t.Cleanup(func() {
		_ = exec.Command(filepath.Join(framework.BinDir(), "kubectl"), "--kubeconfig", env.ControlPlane.KubeconfigPath(), "uncordon", node).Run()
	})
	out, err := exec.CommandContext(ctx, filepath.Join(framework.BinDir(), "kubectl"), "--kubeconfig", env.ControlPlane.KubeconfigPath(),
		"drain", node, "--pod-selector", "app=drained", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "150s").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "kubectl drain: %s", out)
	g.Expect(string(out)).To(ContainSubstring("will retry after 5s"), "the eviction of the serving pod waited for its drain")
	g.Expect(string(out)).To(ContainSubstring("drained"))

	after := waitForSetRollout(ctx, g, ns, podLabels, 3, "example.com/app:v1")
	for _, p := range after {
		g.Expect(p.UID).NotTo(Equal(victim.UID))
		g.Expect(p.Spec.NodeName).NotTo(Equal(node), "the replacement runs elsewhere: the node is cordoned")
	}
	g.Expect(waitForReadyEndpoints(ctx, ns, "drained", 3)).To(Succeed())

	g.Expect(k8sClient.Delete(ctx, cd)).To(Succeed())
	g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool { return len(ps) == 0 })).To(Succeed(), "the CafeDeployment's pods go")
	g.Eventually(func(g Gomega) {
		sets := &cafev1alpha1.InPlaceSetList{}
		g.Expect(k8sClient.List(ctx, sets, client.InNamespace(ns))).To(Succeed())
		g.Expect(sets.Items).To(BeEmpty())
	}).WithContext(ctx).Should(Succeed(), "and its InPlaceSets once drained")
	g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cd), &cafev1alpha1.CafeDeployment{}))).To(BeTrue())
	framework.ExpectLossless(ctx, g, rec)
}
