package cafedeployment_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

var zones = []string{"zone-a", "zone-b", "zone-c"}

// newCafeDeployment is a CafeDeployment of 6 pods over three zones running
// image, released with a beta group then groups of 2, each group waiting
// for a confirmation.
func newCafeDeployment(ns, name, image string) *cafev1alpha1.CafeDeployment {
	labels := map[string]string{"app": name}
	return &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 80}}},
				}},
			},
			Topology: cafev1alpha1.Topology{Values: zones},
			Strategy: cafev1alpha1.CafeDeploymentStrategy{
				UpgradeType:           cafev1alpha1.UpgradeTypeBeta,
				BatchSize:             ptr.To(intstr.FromInt32(2)),
				NeedWaitingForConfirm: ptr.To(true),
			},
		},
	}
}

// createDeployment creates cd and deletes it when the test ends, so its
// controller stops acting in a namespace that envtest never empties.
func createDeployment(ctx context.Context, t testing.TB, g *WithT, cd *cafev1alpha1.CafeDeployment) {
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	t.Cleanup(func() {
		_ = k8sClient.Delete(context.Background(), cd)
		// No garbage collector runs: delete the pod sets too.
		_ = k8sClient.DeleteAllOf(context.Background(), &cafev1alpha1.InPlaceSet{}, client.InNamespace(cd.Namespace))
	})
}

func getDeployment(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment) *cafev1alpha1.CafeDeployment {
	out := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cd), out)).To(Succeed())
	return out
}

// updateDeployment changes cd, retrying on conflicts with the controller's
// status writes.
func updateDeployment(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, mutate func(*cafev1alpha1.CafeDeployment)) {
	g.Expect(framework.Update(ctx, k8sClient, cd.DeepCopy(), mutate)).To(Succeed())
}

// podSet returns the InPlaceSet of one unit.
func podSet(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, unit string) *cafev1alpha1.InPlaceSet {
	s := &cafev1alpha1.InPlaceSet{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: cd.Name + "-" + unit}, s)).To(Succeed())
	return s
}

// podsByUnit lists the namespace's pods by their unit label.
func podsByUnit(ctx context.Context, g Gomega, ns string) map[string][]corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		out[p.Labels[cafev1alpha1.UnitLabel]] = append(out[p.Labels[cafev1alpha1.UnitLabel]], p)
	}
	return out
}

// imageID is what the fake container runtime reports for an image.
func imageID(image string) string { return "sha256:" + fmt.Sprintf("%x", image) }

// runContainers plays the kubelet running the pod's containers: Running,
// every container running the image its spec names, ready. For a pod that
// runs already and whose image changed in place, that is a restart with
// the new image.
func runContainers(ctx context.Context, g Gomega, pod *corev1.Pod) {
	now := metav1.Now()
	restarts := map[string]int32{}
	for _, s := range pod.Status.ContainerStatuses {
		restarts[s.Name] = s.RestartCount + 1
	}
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: true, Started: ptr.To(true), RestartCount: restarts[c.Name],
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	status := map[string]any{"phase": corev1.PodRunning, "containerStatuses": statuses}
	if c := podCondition(pod, corev1.ContainersReady); c == nil || c.Status != corev1.ConditionTrue {
		status["conditions"] = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	}
	g.Expect(patchPodStatus(ctx, k8sClient, pod, status)).To(Succeed())
}

// runsSpecImages: the kubelet reports every container running the image
// the pod's spec names.
func runsSpecImages(pod *corev1.Pod) bool {
	reported := map[string]string{}
	for _, s := range pod.Status.ContainerStatuses {
		reported[s.Name] = s.Image
	}
	for _, c := range pod.Spec.Containers {
		if reported[c.Name] != c.Image {
			return false
		}
	}
	return true
}

// playKubelet runs the containers of every pod of the namespace that does
// not yet report the images of its spec: new pods, and pods updated in
// place. Call it inside Eventually, so it catches up with the controller.
func playKubelet(ctx context.Context, g Gomega, ns string) {
	for _, pods := range podsByUnit(ctx, g, ns) {
		for i := range pods {
			if !runsSpecImages(&pods[i]) {
				runContainers(ctx, g, &pods[i])
			}
		}
	}
}

// serving: the gate is open and the kubelet reports the pod Ready.
func serving(pod *corev1.Pod) bool {
	ready := podCondition(pod, corev1.PodReady)
	return lossless.GateOpen(pod) && ready != nil && ready.Status == corev1.ConditionTrue
}

// record starts recording the namespace's pods and EndpointSlices, to check
// the lossless protocol from the watch stream when the test is done.
func record(ctx context.Context, t testing.TB, g Gomega, ns string) *watchrec.Recorder {
	rec, err := watchrec.Start(ctx, cfg, ns)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(rec.Stop)
	return rec
}

// expectLossless checks that no pod's spec changed and no pod's deletion
// began while an EndpointSlice listed it ready or serving or a traffic
// provider's finalizer was on it.
func expectLossless(ctx context.Context, g Gomega, rec *watchrec.Recorder) {
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	g.Expect(watchrec.Report(watchrec.CheckLossless(rec.Events()))).To(BeEmpty())
}

// confirm records a confirmation of group as the admission webhook would
// after `cafe deploy confirm` by user (the webhook does not run here).
func confirm(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, group int, user string) {
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) {
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[cafev1alpha1.ConfirmGroupAnnotation] = fmt.Sprint(group)
		cd.Annotations[cafev1alpha1.ConfirmedByAnnotation] = user
		cd.Annotations[cafev1alpha1.ConfirmedAtAnnotation] = time.Now().UTC().Format(time.RFC3339)
	})
}
