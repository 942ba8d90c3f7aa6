package inplaceset_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// selectorlessService is the Service a set writes the endpoints of:
// port 80 to the containers' port named http.
func selectorlessService(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

// publishingSet is a set of replicas pods whose container serves port
// 8080 named http, writing the endpoints of Service svc.
func publishingSet(ns string, replicas int32, svc string) *cafev1alpha1.InPlaceSet {
	set := newInPlaceSet(ns, "web", replicas, "app:v1")
	set.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	set.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: svc}
	return set
}

// setSlices are the EndpointSlices the set writes.
func setSlices(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet) []discoveryv1.EndpointSlice {
	list := &discoveryv1.EndpointSliceList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(set.Namespace), client.MatchingLabels{
		discoveryv1.LabelManagedBy: cafev1alpha1.EndpointSliceManagedByInPlaceSet,
	})).To(Succeed())
	return list.Items
}

// listedReady maps the pods the set's slices carry to whether they list
// them ready.
func listedReady(ctx context.Context, g Gomega, set *cafev1alpha1.InPlaceSet) map[string]bool {
	out := map[string]bool{}
	for _, s := range setSlices(ctx, g, set) {
		for _, ep := range s.Endpoints {
			out[ep.TargetRef.Name] = ptr.Deref(ep.Conditions.Ready, true)
		}
	}
	return out
}

func TestWithOwnedEndpointsAnImageChangeDrainsBySliceWithoutClosingAnyGate(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	g.Expect(suite.Client.Create(ctx, selectorlessService(ns, "web", nil))).To(Succeed())
	set := publishingSet(ns, 3, "web")
	createRunningSet(ctx, t, g, set)

	// Published: every pod listed ready, with the named port resolved, and
	// the slices owned by the set for the Service.
	g.Eventually(func(g Gomega) {
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": true, "web-1": true, "web-2": true}))
		c := meta.FindStatusCondition(getSet(ctx, g, set).Status.Conditions, cafev1alpha1.InPlaceSetEndpointsPublishedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(getSet(ctx, g, set).Status.AvailableReplicas).To(HaveValue(BeEquivalentTo(3)))
	}).Should(Succeed())
	stored := getSet(ctx, g, set)
	for _, s := range setSlices(ctx, g, set) {
		g.Expect(s.Labels).To(HaveKeyWithValue(discoveryv1.LabelServiceName, "web"))
		g.Expect(metav1.GetControllerOf(&s).UID).To(Equal(stored.UID))
		g.Expect(s.Ports).To(HaveLen(1))
		g.Expect(*s.Ports[0].Port).To(BeEquivalentTo(8080))
		g.Expect(*s.Ports[0].Name).To(Equal("web"))
		for _, ep := range s.Endpoints {
			g.Expect(ep.Addresses).To(ConsistOf(framework.PodIP(getPod(ctx, g, ns, ep.TargetRef.Name))))
		}
	}
	before := podsOf(ctx, g, set)

	rec := suite.Record(ctx, t, g, ns)
	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Template.Spec.Containers[0].Image = "app:v2" })

	// The kubelet restarts each pod patched in place; the release ends
	// with every pod on v2, the same pods, listed ready again.
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		pods := podsOf(ctx, g, set)
		g.Expect(pods).To(HaveLen(3))
		for _, p := range pods {
			g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v2"), p.Name)
			g.Expect(framework.RunsSpecImages(&p)).To(BeTrue(), p.Name)
		}
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": true, "web-1": true, "web-2": true}))
	}).WithTimeout(time.Minute).Should(Succeed())
	for i, p := range podsOf(ctx, g, set) {
		g.Expect(p.UID).To(Equal(before[i].UID), "%s updated in place, not recreated", p.Name)
	}

	// From the watch stream: no pod patched while a slice listed it
	// ready, never two of the three out of the slices at once
	// (maxUnavailable 1), and no gate ever closed: the drain was the slice.
	events := framework.ExpectLossless(ctx, g, rec)
	g.Expect(watchrec.Report(watchrec.CheckServingLevel(events, 2))).To(BeEmpty())
	for _, ev := range events {
		if ev.Pod != nil {
			g.Expect(lossless.DrainReason(ev.Pod)).To(BeEmpty(), "pod %s's gate closed (resourceVersion %d)", ev.Pod.Name, ev.ResourceVersion)
		}
	}
	for _, p := range before {
		g.Expect(watchrec.CountPodSpecChanges(events, p.Name)).To(Equal(1), "one in-place patch of %s", p.Name)
	}
}

func TestWithOwnedEndpointsAPodIsPatchedOnlyOnceNoOtherSliceListsIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	g.Expect(suite.Client.Create(ctx, selectorlessService(ns, "web", nil))).To(Succeed())
	set := publishingSet(ns, 3, "web")
	set.Spec.UpdateStrategy.MaxUnavailable = ptr.To(intstr.FromInt32(3))
	createRunningSet(ctx, t, g, set)
	g.Eventually(func(g Gomega) {
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": true, "web-1": true, "web-2": true}))
	}).Should(Succeed())
	// Another Service selecting the pods, published by the EndpointSlice
	// controller (played by the test): it still routes to them.
	other := createServingSlice(ctx, g, set)

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	g.Eventually(func(g Gomega) {
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": false, "web-1": false, "web-2": false}))
	}).Should(Succeed(), "dropped from the set's slices")
	g.Consistently(func(g Gomega) {
		for _, p := range podsOf(ctx, g, set) {
			g.Expect(p.Spec.Containers[0].Image).To(Equal("app:v1"), "%s is still listed ready by %s", p.Name, other.Name)
		}
	}).WithTimeout(2 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getSet(ctx, g, set).Status.Conditions, cafev1alpha1.InPlaceSetPodsUpToDateCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Message).To(ContainSubstring(other.Name))
	}).WithTimeout(time.Minute).Should(Succeed(), "the status names the slice that holds the drain once it is slow")

	setEndpoint(ctx, g, other, "web-1", false)
	g.Eventually(func(g Gomega) {
		g.Expect(getPod(ctx, g, ns, "web-1").Spec.Containers[0].Image).To(Equal("app:v2"))
	}).Should(Succeed())
	g.Expect(getPod(ctx, g, ns, "web-0").Spec.Containers[0].Image).To(Equal("app:v1"))
}

func TestWithASelectingServiceTheSetDrainsThroughTheGateAndSaysWhy(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	g.Expect(suite.Client.Create(ctx, selectorlessService(ns, "web", map[string]string{"app": "web"}))).To(Succeed())
	set := publishingSet(ns, 3, "web")
	createRunningSet(ctx, t, g, set)
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getSet(ctx, g, set).Status.Conditions, cafev1alpha1.InPlaceSetEndpointsPublishedCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(cafev1alpha1.InPlaceSetServiceSelectsPodsReason))
		g.Expect(c.Message).To(ContainSubstring("spec.endpoints.service"))
	}).Should(Succeed())
	g.Expect(setSlices(ctx, g, set)).To(BeEmpty(), "the EndpointSlice controller publishes a Service with a selector")

	updateSet(ctx, g, set, func(s *cafev1alpha1.InPlaceSet) { s.Spec.Template.Spec.Containers[0].Image = "app:v2" })
	waitForOneDrain(ctx, g, set, lossless.ReasonDrainForUpdate)

	// Once the selector goes, the set publishes: every pod it serves
	// listed ready, the one drained through its gate listed not ready.
	svc := &corev1.Service{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc)).To(Succeed())
	svc.Spec.Selector = nil
	g.Expect(suite.Client.Update(ctx, svc)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getSet(ctx, g, set).Status.Conditions, cafev1alpha1.InPlaceSetEndpointsPublishedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		ready := 0
		for _, r := range listedReady(ctx, g, set) {
			if r {
				ready++
			}
		}
		g.Expect(ready).To(Equal(2))
	}).Should(Succeed())
}

func TestWithOwnedEndpointsTheSlicesFollowTheServicePortsAndPodReadiness(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	g.Expect(suite.Client.Create(ctx, selectorlessService(ns, "web", nil))).To(Succeed())
	set := publishingSet(ns, 3, "web")
	set.Spec.Template.Spec.Containers[0].Ports = append(set.Spec.Template.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "admin", ContainerPort: 9090})
	createRunningSet(ctx, t, g, set)
	g.Eventually(func(g Gomega) {
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": true, "web-1": true, "web-2": true}))
	}).Should(Succeed())

	svc := &corev1.Service{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc)).To(Succeed())
	svc.Spec.Ports[0].TargetPort = intstr.FromString("admin")
	g.Expect(suite.Client.Update(ctx, svc)).To(Succeed())
	g.Eventually(func(g Gomega) {
		slices := setSlices(ctx, g, set)
		g.Expect(slices).NotTo(BeEmpty())
		for _, s := range slices {
			g.Expect(s.Ports).To(HaveLen(1))
			g.Expect(*s.Ports[0].Port).To(BeEquivalentTo(9090), "slice %s", s.Name)
		}
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": true, "web-1": true, "web-2": true}))
	}).Should(Succeed(), "the named targetPort resolved again")

	// A container that stops being ready takes the pod out of service.
	pod := getPod(ctx, g, ns, "web-1")
	g.Expect(framework.PatchPodStatus(ctx, suite.Client, pod, map[string]any{
		"conditions": []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}},
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(listedReady(ctx, g, set)).To(Equal(map[string]bool{"web-0": true, "web-1": false, "web-2": true}))
		g.Expect(getSet(ctx, g, set).Status.AvailableReplicas).To(HaveValue(BeEquivalentTo(2)))
	}).Should(Succeed())
}
