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
	g.Expect(suite.Client.Create(ctx, set)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), set) })
}

func getSet(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet) *cafev1alpha1.InPlaceSet {
	return framework.Get(ctx, g, suite.Client, set)
}

// updateSet changes the set's spec, retrying on conflicts with the
// controller's status writes.
func updateSet(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet, mutate func(*cafev1alpha1.InPlaceSet)) {
	g.Expect(framework.Update(ctx, suite.Client, set.DeepCopy(), mutate)).To(Succeed())
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
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(set.Namespace), client.MatchingLabels{cafev1alpha1.InPlaceSetLabel: set.Name})).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

func getPod(ctx context.Context, g Gomega, ns, name string) *corev1.Pod {
	pod := &corev1.Pod{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod)).To(Succeed())
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

// bind plays the scheduler: it binds the pod to a node, so that deleting it
// is graceful (an unscheduled pod is deleted at once) as on a cluster.
func bind(ctx context.Context, g Gomega, pod *corev1.Pod) {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-1"},
	}
	g.Expect(suite.Client.SubResource("binding").Create(ctx, pod, b)).To(Succeed())
}

// runAll schedules and starts every pod of the set and waits until all of
// them serve: gate open and Ready.
func runAll(ctx context.Context, g *WithT, set *cafev1alpha1.InPlaceSet, pods []corev1.Pod) {
	for i := range pods {
		bind(ctx, g, &pods[i])
		suite.Kubelet.RunContainers(ctx, g, &pods[i], time.Now())
	}
	g.Eventually(func(g Gomega) {
		for _, p := range podsOf(ctx, g, set) {
			g.Expect(framework.Serving(&p)).To(BeTrue(), "pod %s serves", p.Name)
		}
	}).Should(Succeed())
}

// createRunningSet creates set, of three pods named web-0 to web-2, and
// runs them all (runAll).
func createRunningSet(ctx context.Context, t testing.TB, g *WithT, set *cafev1alpha1.InPlaceSet) {
	createSet(ctx, t, g, set)
	runAll(ctx, g, set, waitForPods(ctx, g, set, "web-0", "web-1", "web-2"))
}

// createServingSlice creates an EndpointSlice listing every pod of set
// ready.
func createServingSlice(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet) *discoveryv1.EndpointSlice {
	slice := endpointSlice(set.Namespace, "app-x1", podsOf(ctx, g, set))
	g.Expect(suite.Client.Create(ctx, slice)).To(Succeed())
	return slice
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
		if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(slice), current); err != nil {
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
		return suite.Client.Update(ctx, current)
	})).To(Succeed())
}
