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
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podutil"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// countingStore counts the pod lookups a map function makes.
type countingStore struct {
	toolscache.KeyGetter
	gets atomic.Int32
}

func (s *countingStore) GetByKey(key string) (any, bool, error) {
	s.gets.Add(1)
	return s.KeyGetter.GetByKey(key)
}

// A slice change wakes the owners of the pods it lists that CAFE's cache
// holds (its own pods only), with one lookup by key per endpoint in the
// informer's store: no List of the namespace and no copy of a pod (issue
// 14: at 3,000 pods those were a third of everything CAFE allocated).
func TestEnqueueOwnersOfSlicePodsLooksUpEachEndpointByKeyInTheCachesStore(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	managed := labels.SelectorFromSet(labels.Set{"managed": "yes"})
	podCache, err := cache.New(apiConfig, cache.Options{Scheme: scheme.New(), ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Label: managed}}})
	g.Expect(err).NotTo(HaveOccurred())
	_, store, err := podutil.CachedPods(ctx, podCache)
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = podCache.Start(ctx) }()
	counting := &countingStore{KeyGetter: store}
	ownerOf := func(o client.Object) []string { return []string{"owner-of-" + o.GetName()} }
	enqueue := lossless.EnqueueOwnersOfSlicePods(counting, ownerOf)

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
	g.Expect(counting.gets.Load()).To(BeEquivalentTo(2), "one lookup per endpoint")

	counting.gets.Store(0)
	g.Expect(enqueue(ctx, slice(theirs, "x", "y"))).To(BeEmpty(), "pods CAFE does not manage are not in its cache")
	g.Expect(counting.gets.Load()).To(BeEquivalentTo(2))
}
