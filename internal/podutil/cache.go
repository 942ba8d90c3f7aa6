package podutil

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// CachedPods returns the cache's pod informer and its indexer, whose
// lookups return the cache's own objects without a copy (read them, never
// modify them). The hot paths read pods there: a lookup through the cache
// reader copies every pod it returns, and a List sizes its result by the
// whole namespace, which at release scale was most of what CAFE allocated.
func CachedPods(ctx context.Context, c cache.Informers) (cache.Informer, toolscache.Indexer, error) {
	informer, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, nil, fmt.Errorf("getting the pod informer: %w", err)
	}
	withIndexer, ok := informer.(interface{ GetIndexer() toolscache.Indexer })
	if !ok {
		return nil, nil, fmt.Errorf("the pod informer (%T) exposes no indexer", informer)
	}
	return informer, withIndexer.GetIndexer(), nil
}
