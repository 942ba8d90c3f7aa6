package e2e

import (
	"context"
	"os/exec"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

func cafeDeployment(ns, name string, replicas int32, podLabels map[string]string) *cafev1alpha1.CafeDeployment {
	return &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: appTemplate(podLabels),
			Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
		},
	}
}

// userClient returns a client authenticated as user, allowed to read and
// patch CafeDeployments in ns (what a release manager's role grants), and
// the kubeconfig it was built from.
func userClient(t *testing.T, ctx context.Context, ns, user string) (client.Client, string) {
	t.Helper()
	return userWithRole(t, ctx, user, "release-managers", &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "release-manager"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"cafe.io"}, Resources: []string{"cafedeployments"}, Verbs: []string{"get", "list", "watch", "patch", "update"}}},
	})
}

func waitForRelease(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, cond func(*cafev1alpha1.CafeDeployment) bool) *cafev1alpha1.CafeDeployment {
	seen, err := framework.WaitForObject(ctx, k8sClient, &cafev1alpha1.CafeDeploymentList{}, cd.Namespace, cd.Name, func(c *cafev1alpha1.CafeDeployment) bool {
		return c.Status.ObservedGeneration == c.Generation && cond(c)
	})
	g.Expect(err).NotTo(HaveOccurred(), "CafeDeployment %s: last status %+v", cd.Name, statusOf(seen))
	return seen
}

func statusOf(cd *cafev1alpha1.CafeDeployment) any {
	if cd == nil {
		return nil
	}
	return cd.Status
}

func phaseAt(phase cafev1alpha1.ReleasePhase, group int32) func(*cafev1alpha1.CafeDeployment) bool {
	return func(c *cafev1alpha1.CafeDeployment) bool {
		return c.Status.Release.Phase == phase && ptr.Deref(c.Status.Release.CurrentGroup, -1) == group
	}
}

func updatedPodsPerZone(pods []*corev1.Pod, image string) map[string]int {
	out := map[string]int{}
	for _, p := range pods {
		if p.Spec.Containers[0].Image == image {
			out[p.Labels[cafev1alpha1.UnitLabel]]++
		}
	}
	return out
}

// Issue scenario 1: 12 replicas over 3 zones, Beta with batchSize 3 and
// confirmation after every group. The release stops after the beta group
// (one pod per zone) until a person confirms; the confirmer recorded is the
// user the API server authenticated; pods are updated in place losslessly.
func TestCafeDeploymentBetaReleaseWaitsForAuthenticatedConfirmation(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "pay"}
	g.Expect(k8sClient.Create(ctx, service(ns, "pay", podLabels))).To(Succeed())
	cd := cafeDeployment(ns, "pay", 12, podLabels)
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:           cafev1alpha1.UpgradeTypeBeta,
		BatchSize:             ptr.To(intstr.FromInt32(3)),
		NeedWaitingForConfirm: ptr.To(true),
		MinAvailable:          ptr.To(intstr.FromInt32(10)),
	}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())

	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v1"))
	waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 4))
	alice, aliceKubeconfig := userClient(t, ctx, ns, "alice")

	rec := framework.Record(ctx, t, g, env.Admin, ns)

	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())

	for group := int32(0); group < 3; group++ {
		got := waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseWaitingForConfirm, group))
		pods := listPods(ctx, g, ns, podLabels)
		perZone := updatedPodsPerZone(pods, "example.com/app:v2")
		want := int(group) + 1
		g.Expect(perZone).To(Equal(map[string]int{"zone-a": want, "zone-b": want, "zone-c": want}), "after group %d", group)
		g.Expect(got.Status.Release.TotalGroups).To(HaveValue(Equal(int32(4))))

		// A client cannot claim to be someone else.
		forged := got.DeepCopy()
		forged.Annotations[cafev1alpha1.ConfirmedByAnnotation] = "bob"
		err := alice.Patch(ctx, forged, client.MergeFrom(got))
		g.Expect(err).To(MatchError(ContainSubstring(cafev1alpha1.ConfirmedByAnnotation)))

		if group == 1 {
			// The CLI, as a kubectl plugin would run it, with alice's credentials.
			out, err := exec.CommandContext(ctx, cafeBinary(t), "deploy", "confirm", cd.Name, "-n", ns, "--kubeconfig", aliceKubeconfig).CombinedOutput()
			g.Expect(err).NotTo(HaveOccurred(), string(out))
			g.Expect(string(out)).To(ContainSubstring("alice"))
			continue
		}
		confirm := got.DeepCopy()
		if confirm.Annotations == nil {
			confirm.Annotations = map[string]string{}
		}
		confirm.Annotations[cafev1alpha1.ConfirmGroupAnnotation] = strconv.Itoa(int(group))
		g.Expect(alice.Patch(ctx, confirm, client.MergeFrom(got))).To(Succeed())
	}
	done := waitForRelease(ctx, g, cd, phaseAt(cafev1alpha1.ReleasePhaseCompleted, 4))

	after := waitForSetRollout(ctx, g, ns, podLabels, 12, "example.com/app:v2")
	g.Expect(identities(after)).To(Equal(before), "in-place release keeps every pod's name, UID, node and IP")
	for i := 0; i < 3; i++ {
		g.Expect(done.Status.Release.Groups[i].ConfirmedBy).To(Equal("alice"), "group %d", i)
		g.Expect(done.Status.Release.Groups[i].FinishTime).NotTo(BeNil())
	}
	g.Expect(done.Annotations).To(HaveKeyWithValue(cafev1alpha1.ReleasedByAnnotation, "cafe-admin"), "the template change is recorded with the admin who made it")
	g.Expect(done.Status.CurrentRevision).To(Equal(done.Status.UpdateRevision))
	g.Expect(done.Status.UpdatedReplicas).To(HaveValue(Equal(int32(12))))

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), 10))).To(BeEmpty())
	// A confirmation awaited is a barrier: no pod of the next group drains
	// before the last pod of the group is back (issue 14).
	expectGroupBoundaries(g, events, labels.SelectorFromSet(podLabels), "example.com/app:v2", []int{3, 6, 9, 12}, false)
}

func listPods(ctx context.Context, g Gomega, ns string, podLabels map[string]string) []*corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(podLabels))).To(Succeed())
	out := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out
}
