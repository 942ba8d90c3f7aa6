package lossless

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// EndpointSlicePodIndex indexes EndpointSlices by the names of the pods their
// endpoints target, so the slices holding a pod are one cached lookup.
const EndpointSlicePodIndex = "cafe.io/endpointslice-target-pods"

// IndexEndpointSlicesByPod is the IndexerFunc of EndpointSlicePodIndex.
func IndexEndpointSlicesByPod(obj client.Object) []string {
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil
	}
	var pods []string
	for _, ep := range slice.Endpoints {
		if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
			pods = append(pods, ep.TargetRef.Name)
		}
	}
	return pods
}

// EnqueueOwnersOfSlicePods returns a map function for an EndpointSlice
// watch: it looks up the pods the slice lists in pods (the cache's pod
// indexer, podutil.CachedPods: its own objects, read only) and enqueues,
// once each, the objects ownerOf names for them (in the slice's namespace). A drained pod may be
// operated on only once slices let go of it, so slice changes must wake
// whoever drains it. Where CAFE manages no pod (another controller's app)
// each endpoint costs one missed map lookup.
func EnqueueOwnersOfSlicePods(pods toolscache.KeyGetter, ownerOf func(client.Object) []string) func(context.Context, client.Object) []reconcile.Request {
	return func(_ context.Context, obj client.Object) []reconcile.Request {
		slice, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil
		}
		seen := map[string]bool{}
		var reqs []reconcile.Request
		for _, ep := range slice.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			cached, found, err := pods.GetByKey(toolscache.NewObjectName(slice.Namespace, ep.TargetRef.Name).String())
			pod, isPod := cached.(*corev1.Pod)
			if err != nil || !found || !isPod {
				continue
			}
			for _, name := range ownerOf(pod) {
				if !seen[name] {
					seen[name] = true
					reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: slice.Namespace, Name: name}})
				}
			}
		}
		return reqs
	}
}
