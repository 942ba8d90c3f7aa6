package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podutil"
)

// watchUntil lists and watches the objects of list's kind selected by opts
// and returns once cond holds over the current set, re-evaluating it on
// every event: no polling, no sleeps. It returns when cond first held.
// cond sees the informer's store, which is never behind the event being
// handled, so it always judges a state the objects really were in.
func watchUntil[L client.ObjectList](ctx context.Context, c client.WithWatch, list L, cond func([]client.Object) bool, opts ...client.ListOption) (time.Time, error) {
	return watchEvents(ctx, c, list, cond, func(_ watch.Event, s cache.Store) bool { return cond(storeObjects(s)) }, opts...)
}

// watchEvents is watchUntil for a condition kept up to date event by event
// (cost per event independent of how many objects there are): initial sees
// the first list, next each event after it with the store as it is then.
func watchEvents[L client.ObjectList](ctx context.Context, c client.WithWatch, list L, initial func([]client.Object) bool, next func(watch.Event, cache.Store) bool, opts ...client.ListOption) (time.Time, error) {
	lw := listWatch(c, list, opts...)
	var store cache.Store
	var at time.Time
	held := func(ok bool) bool {
		if ok {
			at = time.Now()
		}
		return ok
	}
	_, err := watchtools.UntilWithSync(ctx, lw, nil, func(s cache.Store) (bool, error) {
		// The initial list is in: the condition may hold already.
		store = s
		return held(initial(storeObjects(s))), nil
	}, func(ev watch.Event) (bool, error) {
		return held(next(ev, store)), nil
	})
	if err != nil {
		return at, fmt.Errorf("watching %T: %w", list, err)
	}
	return at, nil
}

// listWatch lists and watches the objects of list's kind selected by opts,
// for an informer or watchtools.
func listWatch(c client.WithWatch, list client.ObjectList, opts ...client.ListOption) *cache.ListWatch {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	listOptions := func(raw metav1.ListOptions) *client.ListOptions {
		return &client.ListOptions{Namespace: lo.Namespace, LabelSelector: lo.LabelSelector, FieldSelector: lo.FieldSelector, Raw: &raw}
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, raw metav1.ListOptions) (runtime.Object, error) {
			l := list.DeepCopyObject().(client.ObjectList)
			return l, c.List(ctx, l, listOptions(raw))
		},
		WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, list.DeepCopyObject().(client.ObjectList), listOptions(raw))
		},
	}
}

// storeObjects is what the store holds.
func storeObjects(s cache.Store) []client.Object {
	items := s.List()
	objs := make([]client.Object, 0, len(items))
	for _, o := range items {
		if obj, ok := o.(client.Object); ok {
			objs = append(objs, obj)
		}
	}
	return objs
}

// find returns the object named name, if objs hold it.
func find[T client.Object](objs []client.Object, name string) (T, bool) {
	for _, o := range objs {
		if t, ok := o.(T); ok && o.GetName() == name {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// waitForObject watches the objects of list's kind in ns until the one
// named name exists and satisfies done.
func waitForObject[T client.Object](ctx context.Context, c client.WithWatch, list client.ObjectList, ns, name string, done func(T) bool) error {
	_, err := watchUntil(ctx, c, list, func(objs []client.Object) bool {
		o, ok := find[T](objs, name)
		return ok && done(o)
	}, client.InNamespace(ns))
	return err
}

// create creates obj, what names it in the error.
func create(ctx context.Context, c client.Client, what string, obj client.Object) error {
	if err := c.Create(ctx, obj); err != nil {
		return fmt.Errorf("creating %s: %w", what, err)
	}
	return nil
}

// podTally counts an app's pods by state.
type podTally struct {
	Total        int // every pod, terminating ones included
	Terminating  int
	Ready        int // Ready condition True (readiness gates included)
	OnImage      int // spec and kubelet-reported container image are the target
	ReadyOnImage int
	// GateClosed counts pods whose CAFE readiness gate is False (drained).
	GateClosed int
}

func (t podTally) String() string {
	return fmt.Sprintf("%d pods (%d terminating), %d Ready, %d report the target image, %d both, %d with the traffic gate closed",
		t.Total, t.Terminating, t.Ready, t.OnImage, t.ReadyOnImage, t.GateClosed)
}

// settled is the one definition of "rolled out", the same for every
// workload: exactly n pods of the app exist, none terminating, all Ready,
// each running image as its kubelet (kwok) reports it.
func (t podTally) settled(n int) bool {
	return t.Total == n && t.Terminating == 0 && t.ReadyOnImage == n
}

func tallyPods(objs []client.Object, image string) podTally {
	var t podTally
	for _, o := range objs {
		pod := o.(*corev1.Pod)
		t.Total++
		if pod.DeletionTimestamp != nil {
			t.Terminating++
			continue
		}
		ready, onImage := podutil.Ready(pod), runsImage(pod, image)
		if ready {
			t.Ready++
		}
		if onImage {
			t.OnImage++
		}
		if ready && onImage {
			t.ReadyOnImage++
		}
		if gateClosed(pod) {
			t.GateClosed++
		}
	}
	return t
}

func gateClosed(pod *corev1.Pod) bool {
	gate := lossless.Gate(pod)
	return gate != nil && gate.Status == corev1.ConditionFalse
}

// runsImage: the app container's spec and its container status both say
// image (the status is what the simulated kubelet reports after a start or
// an in-place restart).
func runsImage(pod *corev1.Pod, image string) bool {
	if len(pod.Spec.Containers) == 0 || pod.Spec.Containers[0].Image != image {
		return false
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == pod.Spec.Containers[0].Name {
			return s.Image == image && s.Ready
		}
	}
	return false
}

// waitPodsSettled waits until the app's pods in ns are settled on image and
// returns when that was first seen, with the last tally. The tally is kept
// pod by pod, so an event costs the same at 10,000 pods as at 10.
// hops, when not nil, is shown every state the watch sees.
func waitPodsSettled(ctx context.Context, c client.WithWatch, ns string, n int, image string, hops *hopRecorder) (time.Time, podTally, error) {
	tally := newPodTallies(image)
	see := func(pod *corev1.Pod) {
		tally.set(pod)
		if hops != nil {
			hops.observePod(time.Now(), pod)
		}
	}
	at, err := watchEvents(ctx, c, &corev1.PodList{}, func(objs []client.Object) bool {
		for _, o := range objs {
			see(o.(*corev1.Pod))
		}
		return tally.total.settled(n)
	}, func(ev watch.Event, _ cache.Store) bool {
		if pod, ok := ev.Object.(*corev1.Pod); ok {
			if ev.Type == watch.Deleted {
				tally.remove(pod.Name)
			} else {
				see(pod)
			}
		}
		return tally.total.settled(n)
	}, client.InNamespace(ns), client.MatchingLabels{appLabel: appName})
	if err != nil {
		return at, tally.total, fmt.Errorf("waiting for %d Ready pods on %s in %s (last seen: %s): %w", n, image, ns, tally.total, err)
	}
	return at, tally.total, nil
}

// watchSlicesInto shows hops every version of the app's EndpointSlices in
// ns until stop is called (stop returns once the watch has ended), so the
// report can tell the EndpointSlice controller's part of a drain from
// CAFE's.
func watchSlicesInto(ctx context.Context, c client.WithWatch, ns string, hops *hopRecorder) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Ends with the context; a watch that fails earlier leaves the
		// pods it did not see dropped out of the split steps.
		_, _ = watchEvents(ctx, c, &discoveryv1.EndpointSliceList{}, func(objs []client.Object) bool {
			for _, o := range objs {
				hops.observeSlice(time.Now(), o.(*discoveryv1.EndpointSlice), false)
			}
			return false
		}, func(ev watch.Event, _ cache.Store) bool {
			if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok {
				hops.observeSlice(time.Now(), s, ev.Type == watch.Deleted)
			}
			return false
		}, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: appName})
	}()
	return func() {
		cancel()
		<-done
	}
}

// podTallies keeps the tally of a set of pods as each one changes.
type podTallies struct {
	image string
	total podTally
	each  map[string]podTally
}

func newPodTallies(image string) *podTallies {
	return &podTallies{image: image, each: map[string]podTally{}}
}

// set counts pod as it is now instead of as it was.
func (t *podTallies) set(pod *corev1.Pod) {
	t.remove(pod.Name)
	one := tallyPods([]client.Object{pod}, t.image)
	t.each[pod.Name] = one
	t.total = t.total.plus(one, 1)
}

func (t *podTallies) remove(name string) {
	if old, ok := t.each[name]; ok {
		t.total = t.total.plus(old, -1)
		delete(t.each, name)
	}
}

// plus adds sign times o.
func (t podTally) plus(o podTally, sign int) podTally {
	t.Total += sign * o.Total
	t.Terminating += sign * o.Terminating
	t.Ready += sign * o.Ready
	t.OnImage += sign * o.OnImage
	t.ReadyOnImage += sign * o.ReadyOnImage
	t.GateClosed += sign * o.GateClosed
	return t
}

// waitEndpoints waits until the Service's EndpointSlices list exactly n
// distinct pods, every one ready.
func waitEndpoints(ctx context.Context, c client.WithWatch, ns, service string, n int) error {
	var ready, listed int
	_, err := watchUntil(ctx, c, &discoveryv1.EndpointSliceList{}, func(objs []client.Object) bool {
		ready, listed = endpointCounts(objs)
		return ready == n && listed == n
	}, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: service})
	if err != nil {
		return fmt.Errorf("waiting for %d ready endpoints of Service %s/%s (last seen: %d ready of %d): %w", n, ns, service, ready, listed, err)
	}
	return nil
}

// endpointCounts counts the distinct pods the slices list, and those
// listed ready (a pod may briefly appear in two slices).
func endpointCounts(objs []client.Object) (ready, listed int) {
	state := map[string]bool{}
	for _, o := range objs {
		for _, ep := range o.(*discoveryv1.EndpointSlice).Endpoints {
			if ep.TargetRef == nil {
				continue
			}
			isReady := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			state[ep.TargetRef.Name] = state[ep.TargetRef.Name] || isReady
		}
	}
	for _, r := range state {
		if r {
			ready++
		}
	}
	return ready, len(state)
}

// waitNamespaceGone waits until ns and so everything in it is deleted.
func waitNamespaceGone(ctx context.Context, c client.WithWatch, ns string) error {
	_, err := watchUntil(ctx, c, &corev1.NamespaceList{}, func(objs []client.Object) bool {
		return len(objs) == 0
	}, client.MatchingFields{"metadata.name": ns})
	if err != nil {
		return fmt.Errorf("waiting for namespace %s to be deleted: %w", ns, err)
	}
	return nil
}
