package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/writebatch"
)

// The endpoint-owned scenario measures a design, not CAFE: an in-place
// release whose releaser owns the Service's EndpointSlices (the Service has
// no selector, so the EndpointSlice and Endpoints controllers leave it
// alone) instead of closing a readiness gate on every pod. The benchmark
// itself plays that releaser (endpointPublisher): it takes a pod out of the
// slices, and only once that write is answered patches the pod's image;
// the kubelet (kwok) restarts the container; once the pod is Ready on the
// new image it is listed again. The pod is written twice (the image, the
// kubelet's status) instead of four times, and a slice write drops or
// lists many pods at once. Its CPU is the benchmark process's, reported
// apart from the control plane's like the benchmark's watches.
const (
	endpointOwnedKey = "endpoint-owned"
	// slicePods is how many pods each of the Service's EndpointSlices lists
	// (the EndpointSlice controller's default maximum).
	slicePods = 100
	// endpointManager is the slices' endpointslice.kubernetes.io/managed-by.
	endpointManager = "bench.cafe.io"
)

// endpointOwned is the workload: bare pods named bench-0000 onwards, the
// Deployment's pod template, released by an endpointPublisher with at most
// MaxUnavailable pods out of the slices at once.
type endpointOwned struct {
	shape shape
	mu    sync.Mutex
	pub   *endpointPublisher
}

func (*endpointOwned) Kind() string {
	return "bare pods behind a Service without a selector, released in place by the benchmark, which owns the Service's EndpointSlices (an emulated design, not CAFE)"
}

func (w *endpointOwned) Settings() []string {
	return []string{
		fmt.Sprintf("%d bare pods with the native Deployment's pod template (the same topologySpreadConstraints), no readiness gate", w.shape.Replicas),
		fmt.Sprintf("Service without a selector; its EndpointSlices (%d pods each, managed-by %s) written by the benchmark alone", slicePods, endpointManager),
		fmt.Sprintf("release by the benchmark: at most %d pods out of the slices at once; a pod leaves the slices (the slice write answered) before its image is patched and is listed again once Ready on the new image", w.shape.MaxUnavailable),
	}
}

func (w *endpointOwned) WaterLevel() int { return int(w.shape.Replicas - w.shape.MaxUnavailable) }

// Service is the app's Service without a selector: its endpoints are the
// publisher's.
func (*endpointOwned) Service(ns string) *corev1.Service {
	svc := service(ns)
	svc.Spec.Selector = nil
	return svc
}

func (w *endpointOwned) Create(ctx context.Context, c client.Client, ns, image string) error {
	wc, ok := c.(client.WithWatch)
	if !ok {
		return fmt.Errorf("the endpoint-owned workload needs a client that watches")
	}
	w.Stop()
	pub, err := startEndpointPublisher(ctx, wc, ns, int(w.shape.Replicas), int(w.shape.MaxUnavailable), image)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.pub = pub
	w.mu.Unlock()
	template := deployment{shape: w.shape}.object(ns, image).Spec.Template
	var batch writebatch.Batch
	for i := range w.shape.Replicas {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: endpointOwnedPod(int(i)), Labels: maps.Clone(template.Labels)}, Spec: *template.Spec.DeepCopy()}
		batch.Add(func() error { return create(ctx, c, "pod "+pod.Name, pod) })
	}
	return batch.Run(writebatch.Concurrency)
}

func endpointOwnedPod(i int) string { return fmt.Sprintf("%s-%04d", appName, i) }

func (w *endpointOwned) publisher() (*endpointPublisher, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pub == nil {
		return nil, fmt.Errorf("the endpoint-owned workload was not created")
	}
	return w.pub, nil
}

func (w *endpointOwned) SetImage(_ context.Context, _ client.Client, _, image string) error {
	pub, err := w.publisher()
	if err != nil {
		return err
	}
	pub.release(image)
	return nil
}

func (w *endpointOwned) WaitDone(ctx context.Context, _ client.WithWatch, _ string) error {
	pub, err := w.publisher()
	if err != nil {
		return err
	}
	return pub.waitSettled(ctx)
}

func (w *endpointOwned) Describe(context.Context, client.Client, string) string {
	pub, err := w.publisher()
	if err != nil {
		return err.Error()
	}
	return pub.describe() + "\n"
}

// Stop ends the publisher of the last run, if any.
func (w *endpointOwned) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pub != nil {
		w.pub.stop()
		w.pub = nil
	}
}

// endpointPublisher is the emulated releaser: one loop, woken by every pod
// event and every answered image patch, that decides which pods are out
// of the slices, writes the slices that changed and patches the image of
// each drained pod, the way a controller owning the endpoints would.
type endpointPublisher struct {
	c        client.WithWatch
	ns       string
	n        int
	inFlight int
	cancel   context.CancelFunc

	kick chan struct{}

	mu sync.Mutex
	// pods is the informer's latest view, by name.
	pods map[string]*corev1.Pod
	// The loop's own state, guarded by mu for describe and waitSettled.
	image    string
	selected map[string]bool // pods being updated (out of the slices)
	patching map[string]bool
	listed   []map[string]bool // per slice: the pods its last write listed
	slices   []*discoveryv1.EndpointSlice
	settled  chan struct{}
	// lastErr is the last write that failed (retried on the next pass),
	// for describe.
	lastErr error
}

func startEndpointPublisher(ctx context.Context, c client.WithWatch, ns string, n, inFlight int, image string) (*endpointPublisher, error) {
	p := &endpointPublisher{
		c: c, ns: ns, n: n, inFlight: max(inFlight, 1), kick: make(chan struct{}, 1),
		pods: map[string]*corev1.Pod{}, image: image,
		selected: map[string]bool{}, patching: map[string]bool{}, settled: make(chan struct{}),
	}
	for i := 0; i*slicePods < n; i++ {
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", appName, i), Labels: map[string]string{
				discoveryv1.LabelServiceName: appName, discoveryv1.LabelManagedBy: endpointManager,
			}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(80)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		if err := create(ctx, c, "EndpointSlice "+es.Name, es); err != nil {
			return nil, err
		}
		p.slices = append(p.slices, es)
		p.listed = append(p.listed, map[string]bool{})
	}
	// The publisher outlives the set-up's context: it runs until stopped.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	informer := cache.NewSharedIndexInformer(listWatch(c, &corev1.PodList{}, client.InNamespace(ns)), &corev1.Pod{}, 0, cache.Indexers{})
	see := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok {
			p.mu.Lock()
			p.pods[pod.Name] = pod
			p.mu.Unlock()
			p.wake()
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
		DeleteFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				p.mu.Lock()
				delete(p.pods, pod.Name)
				p.mu.Unlock()
				p.wake()
			}
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	go informer.RunWithContext(runCtx)
	go p.loop(runCtx)
	return p, nil
}

func (p *endpointPublisher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *endpointPublisher) stop() { p.cancel() }

// release starts moving every pod to image.
func (p *endpointPublisher) release(image string) {
	p.mu.Lock()
	p.image = image
	p.settled = make(chan struct{})
	p.mu.Unlock()
	p.wake()
}

// waitSettled waits until every pod runs the release's image, Ready, and
// the slices list them all.
func (p *endpointPublisher) waitSettled(ctx context.Context) error {
	p.mu.Lock()
	settled := p.settled
	p.mu.Unlock()
	select {
	case <-settled:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the benchmark's release to list every pod on %s again (%s): %w", p.image, p.describe(), ctx.Err())
	}
}

func (p *endpointPublisher) describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	listed := 0
	for _, l := range p.listed {
		listed += len(l)
	}
	out := fmt.Sprintf("benchmark's release to %s: %d pods seen, %d listed in the slices, %d out of them being updated", p.image, len(p.pods), listed, len(p.selected))
	if p.lastErr != nil {
		out += fmt.Sprintf("; last failed write (retried): %v", p.lastErr)
	}
	return out
}

func (p *endpointPublisher) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		if err := p.step(ctx); err != nil && ctx.Err() == nil {
			p.mu.Lock()
			p.lastErr = err
			p.mu.Unlock()
		}
	}
}

// step is one pass of the releaser: finish the pods back on the image,
// take more out of the slices within the in-flight bound, write the slices
// that changed, and patch the image of the pods the slices no longer list.
func (p *endpointPublisher) step(ctx context.Context) error {
	p.mu.Lock()
	p.pickPods()
	writes := p.sliceWrites()
	p.mu.Unlock()

	for i, es := range writes {
		if err := p.c.Update(ctx, es); err != nil {
			// Re-read it: the next pass writes it again.
			p.mu.Lock()
			_ = p.c.Get(ctx, client.ObjectKeyFromObject(es), p.slices[i])
			p.mu.Unlock()
			p.wake()
			return fmt.Errorf("writing EndpointSlice %s: %w", es.Name, err)
		}
		p.mu.Lock()
		p.slices[i] = es
		p.listed[i] = listedIn(es)
		p.mu.Unlock()
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for name := range p.selected {
		pod := p.pods[name]
		if pod == nil || p.patching[name] || pod.Spec.Containers[0].Image == p.image || p.isListed(name) {
			continue
		}
		p.patching[name] = true
		go p.patchImage(ctx, name, p.image)
	}
	if len(p.selected) == 0 && p.allListedOn() {
		select {
		case <-p.settled:
		default:
			close(p.settled)
		}
	}
	return nil
}

// pickPods lets the pods back on the image go and picks more to update.
// A pod leaves the slices only while the slices as written list more than
// the level: a pod back on the image is listed by this pass's writes and
// counts towards the next pass's room, not this one's (the writes of one
// pass land one slice after another, in no set order). Called with mu held.
func (p *endpointPublisher) pickPods() {
	for name := range p.selected {
		if pod := p.pods[name]; pod != nil && runsImage(pod, p.image) && podReady(pod) {
			delete(p.selected, name)
			delete(p.patching, name)
		}
	}
	room := p.servingAsWritten() - (p.n - p.inFlight)
	for i := 0; i < p.n && room > 0; i++ {
		name := endpointOwnedPod(i)
		if pod := p.pods[name]; pod != nil && pod.Spec.Containers[0].Image != p.image && !p.selected[name] {
			p.selected[name] = true
			room--
		}
	}
}

// sliceWrites is the slices whose endpoints should change, by index: a
// pod is listed when it is Ready, has an IP and is not being updated.
// Called with mu held.
func (p *endpointPublisher) sliceWrites() map[int]*discoveryv1.EndpointSlice {
	out := map[int]*discoveryv1.EndpointSlice{}
	for s, es := range p.slices {
		var endpoints []discoveryv1.Endpoint
		want := map[string]bool{}
		for i := s * slicePods; i < min((s+1)*slicePods, p.n); i++ {
			name := endpointOwnedPod(i)
			pod := p.pods[name]
			if pod == nil || p.selected[name] || !podReady(pod) || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
				continue
			}
			want[name] = true
			endpoints = append(endpoints, discoveryv1.Endpoint{
				Addresses:  []string{pod.Status.PodIP},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				NodeName:   ptr.To(pod.Spec.NodeName),
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.ns, Name: name, UID: pod.UID},
			})
		}
		if maps.Equal(want, p.listed[s]) {
			continue
		}
		next := es.DeepCopy()
		next.Endpoints = endpoints
		out[s] = next
	}
	return out
}

// servingAsWritten counts the pods the slices list as last written, less
// those selected to leave them. Called with mu held.
func (p *endpointPublisher) servingAsWritten() int {
	n := 0
	for _, l := range p.listed {
		for name := range l {
			if !p.selected[name] {
				n++
			}
		}
	}
	return n
}

func (p *endpointPublisher) isListed(name string) bool {
	for _, l := range p.listed {
		if l[name] {
			return true
		}
	}
	return false
}

// allListedOn: every pod runs the image, Ready, and is listed.
func (p *endpointPublisher) allListedOn() bool {
	if len(p.pods) != p.n {
		return false
	}
	for name, pod := range p.pods {
		if !runsImage(pod, p.image) || !p.isListed(name) {
			return false
		}
	}
	return true
}

// patchImage moves a pod the slices no longer list to image; the pod's
// event wakes the loop.
func (p *endpointPublisher) patchImage(ctx context.Context, name, image string) {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"containers": []map[string]any{{"name": containerName, "image": image}}}})
	if err == nil {
		err = p.c.Patch(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: name}}, client.RawPatch(types.StrategicMergePatchType, patch))
	}
	if err != nil {
		// The next pass patches it again.
		p.mu.Lock()
		delete(p.patching, name)
		p.lastErr = fmt.Errorf("patching the image of pod %s: %w", name, err)
		p.mu.Unlock()
	}
	p.wake()
}

// listedIn names the pods a slice lists.
func listedIn(es *discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, ep := range es.Endpoints {
		if ep.TargetRef != nil {
			out[ep.TargetRef.Name] = true
		}
	}
	return out
}
