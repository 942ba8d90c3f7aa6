package podemu

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/cafe-io/cafe/internal/appanswer"
)

// Defaults of Options.
const (
	DefaultSlowLatency    = appanswer.DefaultSlowLatency
	DefaultMaxGracePeriod = 30 * time.Second
)

// Options configure an Emulator.
type Options struct {
	// PodCIDR is the pod network: the emulator listens on no address
	// outside it. Required.
	PodCIDR netip.Prefix
	// Listen opens a listener on a pod's address, as net.Listen does. In
	// production it is podnet.Network.Listen, which opens it inside the pod
	// network namespace. Required.
	Listen func(network, address string) (net.Listener, error)
	// Namespace limits the emulation to the pods of one namespace; empty
	// means all namespaces.
	Namespace string
	// SlowLatency is how long a container of a -slow image waits before it
	// answers; zero means DefaultSlowLatency.
	SlowLatency time.Duration
	// MaxGracePeriod bounds how long a stopped container finishes the
	// requests in flight, whatever its pod's grace period; zero means
	// DefaultMaxGracePeriod.
	MaxGracePeriod time.Duration
	// Logger receives the emulator's logs (a line per listener opened or
	// stopped).
	Logger logr.Logger
}

// State is where an emulated container port is in its life.
type State string

const (
	// Listening accepts connections and answers.
	Listening State = "Listening"
	// Draining accepts no connection any more and finishes the requests
	// in flight.
	Draining State = "Draining"
)

// EndpointStatus is what Emulator.Endpoints reports of one endpoint.
type EndpointStatus struct {
	Endpoint
	State State `json:"state"`
	// InFlight is the number of requests being answered.
	InFlight int64 `json:"inFlight"`
}

// Emulator emulates the containers of the pods the API server reports
// running (see the package documentation). Create it with New, run it
// with Run.
type Emulator struct {
	opts     Options
	log      logr.Logger
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[cache.ObjectName]
	started  atomic.Bool
	ready    atomic.Bool

	mu       sync.Mutex
	running  map[endpointKey]*process
	draining map[*process]struct{}
	// drained counts the processes still finishing their requests.
	drained sync.WaitGroup
}

// process is one emulated container port: a listener and the HTTP server
// answering on it.
type process struct {
	Endpoint
	grace    time.Duration
	listener net.Listener
	server   *http.Server
	inFlight atomic.Int64
}

// New returns an Emulator of the pods client reports.
func New(client kubernetes.Interface, opts Options) (*Emulator, error) {
	if !opts.PodCIDR.IsValid() {
		return nil, errors.New("podemu: Options.PodCIDR is required")
	}
	if opts.Listen == nil {
		return nil, errors.New("podemu: Options.Listen is required")
	}
	if opts.SlowLatency == 0 {
		opts.SlowLatency = DefaultSlowLatency
	}
	if opts.MaxGracePeriod == 0 {
		opts.MaxGracePeriod = DefaultMaxGracePeriod
	}
	opts.PodCIDR = opts.PodCIDR.Masked()
	e := &Emulator{
		opts:     opts,
		log:      opts.Logger,
		informer: coreinformers.NewPodInformer(client, cmp.Or(opts.Namespace, metav1.NamespaceAll), 0, cache.Indexers{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			// A failed listen is retried soon: usually the address is still
			// held by a pod whose deletion is next in the queue.
			workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](50*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "podemu"}),
		running:  map[endpointKey]*process{},
		draining: map[*process]struct{}{},
	}
	// Managed fields are of no use here and are most of a pod's size.
	if err := e.informer.SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return obj, nil
	}); err != nil {
		return nil, err
	}
	enqueue := func(obj any) {
		if name, err := cache.DeletionHandlingObjectToName(obj); err == nil {
			e.queue.Add(name)
		}
	}
	if _, err := e.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return nil, err
	}
	return e, nil
}

// Run emulates until ctx is done, then stops every container gracefully
// and returns once they all finished (each within its grace period). It
// may be called once.
func (e *Emulator) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("podemu: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.informer.RunWithContext(ctx) })
	if cache.WaitForNamedCacheSyncWithContext(ctx, e.informer.HasSynced) {
		e.ready.Store(true)
		e.log.Info("Emulating the containers of running pods", "podCIDR", e.opts.PodCIDR, "namespace", cmp.Or(e.opts.Namespace, "(all)"))
		// One worker: listeners open and close in the order of the events,
		// and a freed address is free before the next pod's turn.
		wg.Go(func() {
			for e.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	e.ready.Store(false)
	e.queue.ShutDown()
	wg.Wait()

	e.mu.Lock()
	for k, p := range e.running {
		delete(e.running, k)
		e.stop(p, "emulator stopping")
	}
	e.mu.Unlock()
	e.drained.Wait()
	return nil
}

// Ready reports whether the emulator has the API server's pods and acts
// on them.
func (e *Emulator) Ready() bool { return e.ready.Load() }

// Endpoints returns the endpoints listening and those draining, ordered
// by namespace, pod, container and port.
func (e *Emulator) Endpoints() []EndpointStatus {
	e.mu.Lock()
	out := make([]EndpointStatus, 0, len(e.running)+len(e.draining))
	for _, p := range e.running {
		out = append(out, EndpointStatus{Endpoint: p.Endpoint, State: Listening, InFlight: p.inFlight.Load()})
	}
	for p := range e.draining {
		out = append(out, EndpointStatus{Endpoint: p.Endpoint, State: Draining, InFlight: p.inFlight.Load()})
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b EndpointStatus) int {
		return cmp.Or(
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod),
			cmp.Compare(a.Container, b.Container), cmp.Compare(a.Address.Port(), b.Address.Port()),
			cmp.Compare(a.State, b.State), cmp.Compare(a.UID, b.UID))
	})
	return out
}

// StatusHandler serves /healthz (200 "ok" once Ready, 503 before and
// after) and /status (Endpoints as JSON), for the emulator's own loopback
// address.
func (e *Emulator) StatusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.Ready() {
			http.Error(w, "pods not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"ready": e.Ready(), "endpoints": e.Endpoints()})
	})
	return mux
}

func (e *Emulator) processNext(ctx context.Context) bool {
	name, shutdown := e.queue.Get()
	if shutdown {
		return false
	}
	defer e.queue.Done(name)
	if err := e.sync(ctx, name); err != nil {
		// The usual failure is transient: the address is still held by a
		// pod whose stop is further down the queue.
		if e.queue.NumRequeues(name) < 3 {
			e.log.V(1).Info("Cannot emulate the pod's containers yet, retrying", "Pod", klog.KRef(name.Namespace, name.Name), "error", err.Error())
		} else {
			e.log.Error(err, "Cannot emulate the pod's containers, retrying", "Pod", klog.KRef(name.Namespace, name.Name))
		}
		e.queue.AddRateLimited(name)
		return true
	}
	e.queue.Forget(name)
	return true
}

// sync makes the processes of the pod named name what its status says:
// it stops first the ones that are no longer running (freeing their
// addresses), then starts the missing ones.
func (e *Emulator) sync(ctx context.Context, name cache.ObjectName) error {
	var pod *corev1.Pod
	want := map[endpointKey]Endpoint{}
	if obj, exists, err := e.informer.GetIndexer().GetByKey(name.String()); err != nil {
		return err
	} else if exists {
		pod = obj.(*corev1.Pod)
		for _, ep := range wanted(pod) {
			want[ep.key()] = ep
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, p := range e.running {
		if p.Namespace != name.Namespace || p.Pod != name.Name {
			continue
		}
		if w, ok := want[k]; ok && w == p.Endpoint {
			continue
		}
		if pod != nil && pod.UID == p.UID {
			p.grace = gracePeriod(pod, e.opts.MaxGracePeriod)
		}
		delete(e.running, k)
		e.stop(p, stopReason(p.Endpoint, pod))
	}
	var errs []error
	for k, ep := range want {
		if _, ok := e.running[k]; ok || ctx.Err() != nil {
			continue
		}
		// The network rule: this project only ever sends or receives
		// traffic on loopback or inside its own network namespaces. A pod
		// address outside the pod CIDR is refused until the pod changes.
		if !e.opts.PodCIDR.Contains(ep.Address.Addr()) {
			e.log.Error(nil, "Not listening outside the pod CIDR", "Pod", klog.KRef(ep.Namespace, ep.Pod),
				"container", ep.Container, "address", ep.Address, "podCIDR", e.opts.PodCIDR)
			continue
		}
		p, err := e.start(ep, gracePeriod(pod, e.opts.MaxGracePeriod))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.running[k] = p
	}
	return errors.Join(errs...)
}

// start opens the listener of ep, inside the pod CIDR only, and serves the
// emulated application on it.
func (e *Emulator) start(ep Endpoint, grace time.Duration) (*process, error) {
	if !e.opts.PodCIDR.Contains(ep.Address.Addr()) { // checked by sync; never listen there
		return nil, fmt.Errorf("pod address %s is outside the pod CIDR %s: not listening there", ep.Address, e.opts.PodCIDR)
	}
	l, err := e.opts.Listen("tcp", ep.Address.String())
	if err != nil {
		return nil, fmt.Errorf("listening on %s for container %s: %w", ep.Address, ep.Container, err)
	}
	p := &process{Endpoint: ep, grace: grace, listener: &onceCloseListener{Listener: l}}
	p.server = &http.Server{
		Handler:           appHandler(ep, e.opts.SlowLatency, &p.inFlight),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logWriter{e.log.V(1)}, "", 0),
	}
	go func() { _ = p.server.Serve(p.listener) }()
	version, behaviour := ParseImage(ep.Image)
	e.log.Info("Listening", "Pod", klog.KRef(ep.Namespace, ep.Pod), "uid", ep.UID, "container", ep.Container,
		"address", ep.Address, "image", ep.Image, "version", version, "behaviour", behaviour, "restartCount", ep.RestartCount)
	return p, nil
}

// stop stops p as a Go server does on SIGTERM: no new connection from now
// on (the listener closes before stop returns, so the address is free),
// and the requests in flight finish within p's grace period; after it they
// are cut. Callers hold e.mu.
func (e *Emulator) stop(p *process, reason string) {
	_ = p.listener.Close()
	e.log.Info("Stopped listening", "Pod", klog.KRef(p.Namespace, p.Pod), "uid", p.UID, "container", p.Container,
		"address", p.Address, "reason", reason, "gracePeriod", p.grace.String(), "inFlight", p.inFlight.Load())
	e.draining[p] = struct{}{}
	e.drained.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.grace)
		defer cancel()
		if err := p.server.Shutdown(ctx); err != nil {
			_ = p.server.Close()
			e.log.Info("Grace period over: requests in flight cut", "Pod", klog.KRef(p.Namespace, p.Pod), "address", p.Address)
		}
		e.mu.Lock()
		delete(e.draining, p)
		e.mu.Unlock()
	})
}

// onceCloseListener lets stop close the listener before http.Server's
// Shutdown closes it again.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// logWriter turns the HTTP servers' error log lines into log entries.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(b)))
	return len(b), nil
}
