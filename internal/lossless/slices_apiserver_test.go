package lossless_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/managermetrics"
)

// endpointSlice lists the pod with the given readiness.
func endpointSlice(pod *corev1.Pod, ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name + "-slice"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			// The API refuses loopback endpoints; nothing is ever sent to
			// this documentation address (RFC 5737): the slice is data.
			Addresses:  []string{"192.0.2.10"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}},
	}
}

// slicesFromAStaleCache is a Slices whose progress comes from a real
// informer but whose cached slices are a frozen snapshot (a real watch
// cannot be held back on demand): cached is what the lagging cache shows.
func slicesFromAStaleCache(ctx context.Context, g Gomega, cached *discoveryv1.EndpointSlice) *lossless.Slices {
	noPods := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	slices, err := lossless.NewSlices(apiConfig, apiClient, noPods)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(slices.FreezeSliceCache(cached.Namespace, cached)).To(Succeed())
	go func() { _ = slices.Start(ctx) }()
	return slices
}

// closeGate closes the pod's gate for an update and returns the pod as
// the API server has it then.
func closeGate(ctx context.Context, g Gomega, pod *corev1.Pod) *corev1.Pod {
	g.Expect(lossless.SetGate(ctx, apiClient, pod, corev1.ConditionFalse, lossless.ReasonDrainForUpdate, "draining")).To(Succeed())
	closed := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), closed)).To(Succeed())
	return closed
}

// sliceAPIReads is the drain check's count of slices read from the API
// server (cafe_lossless_endpointslice_api_reads_total).
func sliceAPIReads(g Gomega) float64 {
	return managermetrics.Series(g, "cafe_lossless_endpointslice_api_reads_total", nil).GetCounter().GetValue()
}

// The drain check must not judge a pod from a slice cache older than the
// pod (issue 14, 10,000 pods: images were patched while the endpointslice
// controller, half a second before, had listed the pods ready again, and
// CAFE's slice watch had not delivered that yet).
func TestSlicesRereadFromTheAPIServerWhenTheSliceCacheIsOlderThanThePod(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, apiClient)

	pod := servingPodIn(ctx, g, ns, "judged")
	// The endpointslice controller lists the pod ready, then CAFE closes
	// its gate: the pod's resourceVersion is newer than any slice event.
	listed := endpointSlice(pod, true)
	g.Expect(apiClient.Create(ctx, listed)).To(Succeed())
	closed := closeGate(ctx, g, pod)

	slices := slicesFromAStaleCache(ctx, g, endpointSlice(pod, false))

	before := sliceAPIReads(g)
	got, err := slices.ForPod(ctx, closed)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lossless.Drained(closed, got)).To(BeFalse(), "the API server's slice still lists the pod ready")
	g.Expect(sliceAPIReads(g)-before).To(Equal(1.0), "one slice read from the API server")

	// The endpointslice controller drops the pod: once the informer has
	// delivered that write (newer than the pod), the cache is trusted.
	unlisted := &discoveryv1.EndpointSlice{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(listed), unlisted)).To(Succeed())
	unlisted.Endpoints[0].Conditions = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false)}
	g.Expect(apiClient.Update(ctx, unlisted)).To(Succeed())
	g.Eventually(func(g Gomega) {
		before := sliceAPIReads(g)
		got, err := slices.ForPod(ctx, closed)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(lossless.Drained(closed, got)).To(BeTrue())
		g.Expect(sliceAPIReads(g) - before).To(BeZero())
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// A cached slice that still holds the pod is a verdict that only waits:
// however old the cache, it costs no read of the API server.
func TestSlicesTrustACachedHoldWithoutReadingTheAPIServer(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := framework.CreateNamespace(t, apiClient)
	pod := servingPodIn(ctx, g, ns, "held")
	closed := closeGate(ctx, g, pod)

	slices := slicesFromAStaleCache(ctx, g, endpointSlice(pod, true))

	before := sliceAPIReads(g)
	got, err := slices.ForPod(ctx, closed)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lossless.TrafficHolders(closed, got)).To(ConsistOf("EndpointSlice held-slice lists it ready or serving"))
	g.Expect(sliceAPIReads(g) - before).To(BeZero())
}

// A pod is deleted only as it was judged drained: a write since the read
// (here the kubelet turning Ready True again from a stale view of the
// gate) makes the delete a conflict, and the pod stays.
func TestDeleteDrainedRefusesAPodChangedSinceItWasJudged(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := framework.CreateNamespace(t, apiClient)
	pod := servingPodIn(ctx, g, ns, "judged-then-ready")
	g.Expect(lossless.SetGate(ctx, apiClient, pod, corev1.ConditionFalse, lossless.ReasonDrainForDelete, "draining")).To(Succeed())
	judged := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), judged)).To(Succeed())

	readyAgain := judged.DeepCopy()
	for i := range readyAgain.Status.Conditions {
		if readyAgain.Status.Conditions[i].Type == corev1.PodReady {
			readyAgain.Status.Conditions[i].Status = corev1.ConditionTrue
		}
	}
	g.Expect(apiClient.Status().Update(ctx, readyAgain)).To(Succeed())

	err := lossless.DeleteDrained(ctx, apiClient, judged)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})).To(Succeed(), "the pod is still there")

	current := &corev1.Pod{}
	g.Expect(apiClient.Get(ctx, client.ObjectKeyFromObject(pod), current)).To(Succeed())
	g.Expect(lossless.DeleteDrained(ctx, apiClient, current)).To(Succeed())
}
