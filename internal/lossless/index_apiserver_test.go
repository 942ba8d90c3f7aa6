package lossless_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// countingReader counts the pod lookups a map function makes.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

// A slice change wakes the owners of the pods it lists; where the cache
// (CAFE's pods only) holds no pod of the slice's namespace — another
// controller's app — the map function looks nothing up (issue 14: CAFE's
// CPU while another controller releases).
func TestEnqueueOwnersOfSlicePodsLooksUpNothingWhereCAFEManagesNoPod(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	managed := labels.SelectorFromSet(labels.Set{"managed": "yes"})
	podCache, err := cache.New(apiConfig, cache.Options{Scheme: scheme.New(), ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Label: managed}}})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = podCache.Start(ctx) }()
	reader := &countingReader{Reader: podCache}
	ownerOf := func(o client.Object) []string { return []string{"owner-of-" + o.GetName()} }
	enqueue := lossless.EnqueueOwnersOfSlicePods(reader, ownerOf)

	ours, theirs := framework.CreateNamespace(t, apiClient), framework.CreateNamespace(t, apiClient)
	pod := func(ns, name string, lbls map[string]string) {
		g.Expect(apiClient.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}}})).To(Succeed())
	}
	pod(ours, "a", map[string]string{"managed": "yes"})
	pod(theirs, "x", nil)
	pod(theirs, "y", nil)
	slice := func(ns string, pods ...string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, AddressType: discoveryv1.AddressTypeIPv4}
		for _, p := range pods {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"127.0.0.1"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: p}})
		}
		return s
	}
	g.Expect(podCache.WaitForCacheSync(ctx)).To(BeTrue())
	g.Eventually(func(g Gomega) {
		g.Expect(podCache.Get(ctx, types.NamespacedName{Namespace: ours, Name: "a"}, &corev1.Pod{})).To(Succeed())
	}, "30s").Should(Succeed())

	g.Expect(enqueue(ctx, slice(ours, "a", "gone"))).To(Equal([]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ours, Name: "owner-of-a"}}}))
	g.Expect(reader.gets.Load()).To(BeEquivalentTo(2), "one lookup per endpoint where CAFE manages pods")

	reader.gets.Store(0)
	g.Expect(enqueue(ctx, slice(theirs, "x", "y"))).To(BeEmpty())
	g.Expect(reader.gets.Load()).To(BeZero(), "no lookup in a namespace where the cache holds no pod")
}
