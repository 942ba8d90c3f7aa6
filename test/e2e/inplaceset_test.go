package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

func inPlaceSet(ns, name string, replicas int32, podLabels map[string]string) *cafev1alpha1.InPlaceSet {
	return &cafev1alpha1.InPlaceSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas:       ptr.To(replicas),
			Selector:       &metav1.LabelSelector{MatchLabels: podLabels},
			Template:       appTemplate(podLabels),
			UpdateStrategy: cafev1alpha1.InPlaceSetUpdateStrategy{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
		},
	}
}

// podIdentity is what an in-place update must keep.
type podIdentity struct {
	UID  types.UID
	Node string
	IP   string
}

func identities(pods []*corev1.Pod) map[string]podIdentity {
	out := map[string]podIdentity{}
	for _, p := range pods {
		out[p.Name] = podIdentity{UID: p.UID, Node: p.Spec.NodeName, IP: p.Status.PodIP}
	}
	return out
}

func waitForSetRollout(ctx context.Context, g Gomega, ns string, podLabels map[string]string, replicas int, image string) []*corev1.Pod {
	var pods []*corev1.Pod
	err := waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
		pods = ps
		return len(ps) == replicas && all(ps, func(p *corev1.Pod) bool {
			s := containerStatus(p, "app")
			return p.DeletionTimestamp == nil && podReady(p) && p.Spec.Containers[0].Image == image && s != nil && s.Image == image
		})
	})
	g.Expect(err).NotTo(HaveOccurred(), "pods never all ran %s and were Ready", image)
	return pods
}

func TestInPlaceSetUpdatesImagesInPlaceLosslessly(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "ips"}
	g.Expect(k8sClient.Create(ctx, service(ns, "ips", podLabels))).To(Succeed())
	set := inPlaceSet(ns, "ips", 6, podLabels)
	g.Expect(k8sClient.Create(ctx, set)).To(Succeed())

	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1"))
	g.Expect(waitForReadyEndpoints(ctx, ns, "ips", 6)).To(Succeed())

	rec := framework.Record(ctx, t, g, env.Admin, ns)

	g.Expect(update(ctx, set, func(s *cafev1alpha1.InPlaceSet) {
		s.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	})).To(Succeed())

	after := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v2")
	g.Expect(identities(after)).To(Equal(before), "an image-only change must keep every pod's name, UID, node and IP")
	for _, p := range after {
		g.Expect(containerStatus(p, "app").RestartCount).To(Equal(int32(1)))
	}
	g.Expect(waitForReadyEndpoints(ctx, ns, "ips", 6)).To(Succeed())

	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), 5))).To(BeEmpty())
	for name := range before {
		g.Expect(watchrec.CountPodSpecChanges(events, name)).To(Equal(1), "pod %s", name)
	}

	// The status follows the pods: its writes are coalesced, so it may
	// trail the last pod's Ready by a moment.
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		g.Expect(set.Status.UpdatedReplicas).To(HaveValue(Equal(int32(6))))
		g.Expect(set.Status.CurrentRevision).To(Equal(set.Status.UpdateRevision))
		g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
	}, "30s").Should(Succeed())
}

func TestInPlaceSetRecreatesPodsForOtherChangesLosslessly(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "recreate"}
	g.Expect(k8sClient.Create(ctx, service(ns, "recreate", podLabels))).To(Succeed())
	set := inPlaceSet(ns, "recreate", 4, podLabels)
	g.Expect(k8sClient.Create(ctx, set)).To(Succeed())
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, 4, "example.com/app:v1"))

	rec := framework.Record(ctx, t, g, env.Admin, ns)

	g.Expect(update(ctx, set, func(s *cafev1alpha1.InPlaceSet) {
		s.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "strict"}}
	})).To(Succeed())

	var after []*corev1.Pod
	g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
		after = ps
		return len(ps) == 4 && all(ps, func(p *corev1.Pod) bool {
			return p.DeletionTimestamp == nil && podReady(p) && len(p.Spec.Containers[0].Env) == 1
		})
	})).To(Succeed())
	for name, id := range identities(after) {
		g.Expect(id.UID).NotTo(Equal(before[name].UID), "pod %s must have been recreated", name)
	}
	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), 3))).To(BeEmpty())
}

// deleteDrainsFirst deletes victim as the suite's user: the webhook refuses
// and records a drain request, CAFE deletes the pod once drained, and its
// set replaces it (n pods Ready again, the victim not among them).
//
// The delete may also succeed: when the webhook refused on an object the
// API server read from its cache, the server runs admission once more on
// the live pod, and if CAFE drained it in between (the drain request is
// already on it), the webhook lets the drained pod go. Either way the pod
// must have carried the user's drain request before its deletion began,
// as the watch stream shows (the caller checks lossless on it).
func deleteDrainsFirst(ctx context.Context, g Gomega, rec *watchrec.Recorder, ns string, podLabels map[string]string, victim *corev1.Pod, n int) {
	if err := k8sClient.Delete(ctx, victim); err != nil {
		g.Expect(err).To(MatchError(ContainSubstring("a drain was requested")))
	}
	g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
		for _, p := range ps {
			if p.UID == victim.UID {
				return false
			}
		}
		return len(ps) == n && all(ps, podReady)
	})).To(Succeed(), "the pod must be drained, deleted and replaced")
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	g.Expect(drainRequestBeforeDeletion(rec.Events(), victim)).To(Equal("cafe-admin"), "the delete became a drain request, recorded with the authenticated user, before the pod's deletion began")
}

// drainRequestBeforeDeletion is who requested victim's drain as the watch
// stream saw it before the pod's deletion began ("" if nobody did).
func drainRequestBeforeDeletion(events []watchrec.Event, victim *corev1.Pod) string {
	for _, e := range watchrec.PodHistory(events, victim.Name) {
		if e.Pod.UID != victim.UID {
			continue
		}
		if e.Pod.DeletionTimestamp != nil || e.Type == watchrec.Deleted {
			return ""
		}
		if by := e.Pod.Annotations[cafev1alpha1.DrainRequestedByAnnotation]; by != "" {
			return by
		}
	}
	return ""
}

func TestDeletingAManagedPodDrainsItFirst(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "del"}
	g.Expect(k8sClient.Create(ctx, service(ns, "del", podLabels))).To(Succeed())
	g.Expect(k8sClient.Create(ctx, inPlaceSet(ns, "del", 3, podLabels))).To(Succeed())
	pods := waitForSetRollout(ctx, g, ns, podLabels, 3, "example.com/app:v1")
	g.Expect(waitForReadyEndpoints(ctx, ns, "del", 3)).To(Succeed())

	rec := framework.Record(ctx, t, g, env.Admin, ns)

	victim := pods[0]
	deleteDrainsFirst(ctx, g, rec, ns, podLabels, victim, 3)
	framework.ExpectLossless(ctx, g, rec)

	// Forced: gone at once, without a drain.
	forced := listPods(ctx, g, ns, podLabels)[0]
	patch := client.MergeFrom(forced.DeepCopy())
	forced.Annotations = map[string]string{cafev1alpha1.ForceDeleteAnnotation: "true"}
	g.Expect(k8sClient.Patch(ctx, forced, patch)).To(Succeed())
	g.Expect(k8sClient.Delete(ctx, forced)).To(Succeed())
}
