package inplaceset_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// newInPlaceSet is an InPlaceSet of replicas pods, each with one container
// "app" running image, updated one pod at a time.
func newInPlaceSet(ns, name string, replicas int32, image string) *cafev1alpha1.InPlaceSet {
	labels := map[string]string{"app": name}
	return &cafev1alpha1.InPlaceSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: image, Env: []corev1.EnvVar{{Name: "MODE", Value: "blue"}}},
				}},
			},
		},
	}
}

// createSet creates set and deletes it when the test ends, so its controller
// stops acting in a namespace that envtest never empties.
func createSet(ctx context.Context, t testing.TB, g *WithT, set *cafev1alpha1.InPlaceSet) {
	g.Expect(k8sClient.Create(ctx, set)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), set) })
}

func getSet(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet) *cafev1alpha1.InPlaceSet {
	out := &cafev1alpha1.InPlaceSet{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), out)).To(Succeed())
	return out
}

// updateSet changes the set's spec, retrying on conflicts with the
// controller's status writes.
func updateSet(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet, mutate func(*cafev1alpha1.InPlaceSet)) {
	g.Expect(framework.Update(ctx, k8sClient, set.DeepCopy(), mutate)).To(Succeed())
}

// observedRevision waits until the controller has observed the set's
// latest spec and returns its update revision.
func observedRevision(ctx context.Context, g *WithT, set *cafev1alpha1.InPlaceSet) string {
	var rev string
	g.Eventually(func(g Gomega) {
		s := getSet(ctx, g, set)
		g.Expect(s.Status.ObservedGeneration).To(Equal(s.Generation))
		g.Expect(s.Status.UpdateRevision).NotTo(BeEmpty())
		rev = s.Status.UpdateRevision
	}).Should(Succeed())
	return rev
}

// podsOf lists the set's pods, by name.
func podsOf(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet) []corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(set.Namespace), client.MatchingLabels{cafev1alpha1.InPlaceSetLabel: set.Name})).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

func getPod(ctx context.Context, g Gomega, ns, name string) *corev1.Pod {
	pod := &corev1.Pod{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod)).To(Succeed())
	return pod
}

// waitForPods waits until the set has exactly the named pods.
func waitForPods(ctx context.Context, g *WithT, set *cafev1alpha1.InPlaceSet, names ...string) []corev1.Pod {
	var pods []corev1.Pod
	g.Eventually(func(g Gomega) {
		pods = podsOf(ctx, g, set)
		g.Expect(podNames(pods)).To(Equal(names))
	}).Should(Succeed())
	return pods
}

func podNames(pods []corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// imageID is what the fake container runtime reports for an image.
func imageID(image string) string { return "sha256:" + fmt.Sprintf("%x", image) }

// bind plays the scheduler: it binds the pod to a node, so that deleting it
// is graceful (an unscheduled pod is deleted at once) as on a cluster.
func bind(ctx context.Context, g Gomega, pod *corev1.Pod) {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-1"},
	}
	g.Expect(k8sClient.SubResource("binding").Create(ctx, pod, b)).To(Succeed())
}

// startContainers plays the kubelet starting the pod: Running, every
// container running its spec image and ready since since.
func startContainers(ctx context.Context, g Gomega, pod *corev1.Pod, since time.Time) {
	at := metav1.NewTime(since)
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
		})
	}
	g.Expect(patchPodStatus(ctx, k8sClient, pod, map[string]any{
		"phase":             corev1.PodRunning,
		"conditions":        []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: at}},
		"containerStatuses": statuses,
	})).To(Succeed())
}

// restartWithSpecImages plays the kubelet applying an in-place update: every
// container restarts with the image the spec now names (a new imageID) and
// is ready again.
func restartWithSpecImages(ctx context.Context, g Gomega, pod *corev1.Pod) {
	now := metav1.Now()
	restarts := map[string]int32{}
	for _, s := range pod.Status.ContainerStatuses {
		restarts[s.Name] = s.RestartCount
	}
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: true, Started: ptr.To(true), RestartCount: restarts[c.Name] + 1,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	g.Expect(patchPodStatus(ctx, k8sClient, pod, map[string]any{"containerStatuses": statuses})).To(Succeed())
}

// runAll schedules and starts every pod of the set and waits until all of
// them serve: gate open and Ready.
func runAll(ctx context.Context, g *WithT, set *cafev1alpha1.InPlaceSet, pods []corev1.Pod) {
	for i := range pods {
		bind(ctx, g, &pods[i])
		startContainers(ctx, g, &pods[i], time.Now())
	}
	g.Eventually(func(g Gomega) {
		for _, p := range podsOf(ctx, g, set) {
			g.Expect(serving(&p)).To(BeTrue(), "pod %s serves", p.Name)
		}
	}).Should(Succeed())
}

// serving: the gate is open and the kubelet reports the pod Ready.
func serving(pod *corev1.Pod) bool {
	ready := podCondition(pod, corev1.PodReady)
	return lossless.GateOpen(pod) && ready != nil && ready.Status == corev1.ConditionTrue
}

// drainReasons maps each pod whose gate is closed for an operation to the
// reason.
func drainReasons(pods []corev1.Pod) map[string]string {
	out := map[string]string{}
	for i := range pods {
		if r := lossless.DrainReason(&pods[i]); r != "" {
			out[pods[i].Name] = r
		}
	}
	return out
}

// endpointSlice is what the endpointslice controller would write for a
// Service selecting pods: every pod listed ready and serving.
func endpointSlice(ns, name string, pods []corev1.Pod) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "app"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.0.0.%d", i+1)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name, UID: p.UID},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		})
	}
	return s
}

// setEndpoint rewrites the conditions of the pod's endpoint in the slice,
// as the endpointslice controller does once the pod turns NotReady.
func setEndpoint(ctx context.Context, g Gomega, slice *discoveryv1.EndpointSlice, pod string, ready bool) {
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current := &discoveryv1.EndpointSlice{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(slice), current); err != nil {
			return err
		}
		found := false
		for i := range current.Endpoints {
			if current.Endpoints[i].TargetRef.Name == pod {
				current.Endpoints[i].Conditions.Ready = ptr.To(ready)
				current.Endpoints[i].Conditions.Serving = ptr.To(ready)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("slice %s does not list pod %s", slice.Name, pod)
		}
		return k8sClient.Update(ctx, current)
	})).To(Succeed())
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
func expectLossless(ctx context.Context, g Gomega, rec *watchrec.Recorder) []watchrec.Event {
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	events := rec.Events()
	g.Expect(watchrec.Report(watchrec.CheckLossless(events))).To(BeEmpty())
	return events
}
