package framework

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WaitForList watches the objects of list's kind (in opts' namespace and
// selector) and returns once cond holds over the current set of objects.
// It never sleeps: cond is re-evaluated on every watch event. The last set
// seen is left in list, so a caller can report what it saw on timeout.
func WaitForList[L client.ObjectList](ctx context.Context, c client.WithWatch, list L, cond func(items []runtime.Object) bool, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	current := map[types.NamespacedName]runtime.Object{}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, raw metav1.ListOptions) (runtime.Object, error) {
			l := list.DeepCopyObject().(client.ObjectList)
			err := c.List(ctx, l, &client.ListOptions{Namespace: lo.Namespace, LabelSelector: lo.LabelSelector, FieldSelector: lo.FieldSelector, Raw: &raw})
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
			l := list.DeepCopyObject().(client.ObjectList)
			return c.Watch(ctx, l, &client.ListOptions{Namespace: lo.Namespace, LabelSelector: lo.LabelSelector, FieldSelector: lo.FieldSelector, Raw: &raw})
		},
	}
	items := func() []runtime.Object {
		out := make([]runtime.Object, 0, len(current))
		for _, o := range current {
			out = append(out, o)
		}
		return out
	}
	_, err := watchtools.UntilWithSync(ctx, lw, nil, nil, func(ev watch.Event) (bool, error) {
		obj, ok := ev.Object.(client.Object)
		if !ok {
			return false, nil
		}
		key := client.ObjectKeyFromObject(obj)
		if ev.Type == watch.Deleted {
			delete(current, key)
		} else {
			current[key] = obj
		}
		return cond(items()), nil
	})
	if setErr := meta.SetList(list, items()); setErr != nil && err == nil {
		err = setErr
	}
	if err != nil {
		return fmt.Errorf("waiting on %T (%d objects seen): %w", list, len(current), err)
	}
	return nil
}

// WaitForObject watches the objects of list's kind in namespace ns until
// the one named name satisfies cond. It returns the last state of that
// object it saw (the zero T if none), to report on timeout, and the wait's
// error.
func WaitForObject[T client.Object](ctx context.Context, c client.WithWatch, list client.ObjectList, ns, name string, cond func(T) bool) (T, error) {
	var seen T
	err := WaitForList(ctx, c, list, func(items []runtime.Object) bool {
		for _, o := range items {
			if obj, ok := o.(T); ok && obj.GetName() == name {
				seen = obj
				return cond(obj)
			}
		}
		return false
	}, client.InNamespace(ns))
	return seen, err
}
