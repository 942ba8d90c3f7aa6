package podemu_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/podemu"
	"github.com/cafe-io/cafe/test/builders"
	"github.com/cafe-io/cafe/test/framework"
)

// Waits on state poll at this rate until this deadline; nothing sleeps in
// place of a state.
const (
	deadline = 30 * time.Second
	poll     = 20 * time.Millisecond
)

// testFinalizer holds a pod with a deletionTimestamp, as a drain would.
const testFinalizer = "test.cafe.io/hold"

// emulator is a running Emulator of one test namespace's pods.
type emulator struct {
	*podemu.Emulator
	cancel context.CancelFunc
	done   chan error
}

// startEmulator runs an Emulator of the pods of ns on the test pod network
// (through opts.Listen if set) until the test ends, and waits until it is
// ready.
func startEmulator(t *testing.T, g *WithT, ns string, opts podemu.Options) *emulator {
	t.Helper()
	opts.PodCIDR, opts.Namespace = podCIDR, ns
	if opts.Listen == nil {
		opts.Listen = network.Listen
	}
	opts.Logger = logr.Discard()
	if testing.Verbose() {
		opts.Logger = zap.New(zap.WriteTo(os.Stderr)).WithValues("test", t.Name())
	}
	e, err := podemu.New(clientset, opts)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	r := &emulator{Emulator: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("emulator: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the emulator did not stop within a minute")
		}
	})
	g.Eventually(e.Ready).WithTimeout(deadline).WithPolling(poll).Should(BeTrue())
	return r
}

// setup is a test's context, Gomega, namespace and emulator.
func setup(t *testing.T, opts podemu.Options) (context.Context, *WithT, string, *emulator) {
	t.Helper()
	framework.RequireAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	g := NewWithT(t)
	ns := framework.CreateNamespace(t, k8sClient)
	return ctx, g, ns, startEmulator(t, g, ns, opts)
}

// createRunning creates pod and writes the status kwok would once it
// started on ip; it returns the pod as stored.
func createRunning(ctx context.Context, g *WithT, pod *corev1.Pod, ip netip.Addr) *corev1.Pod {
	g.Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	return updateStatus(ctx, g, pod, func(p *corev1.Pod) { builders.SetPodRunning(p, ip.String()) })
}

// updateStatus writes mutate's change of pod's status through the status
// subresource, as kwok does, and returns the pod as stored.
func updateStatus(ctx context.Context, g *WithT, pod *corev1.Pod, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p)).To(Succeed())
	mutate(p)
	g.Expect(k8sClient.Status().Update(ctx, p)).To(Succeed())
	return p
}

// update writes mutate's change of pod (spec or metadata).
func update(ctx context.Context, g *WithT, pod *corev1.Pod, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p)).To(Succeed())
	mutate(p)
	g.Expect(k8sClient.Update(ctx, p)).To(Succeed())
	return p
}

// response is what a request to an emulated container got.
type response struct {
	Status  int
	Pod     string
	Version string
	Answer  podemu.Answer
	Took    time.Duration
	Err     error
}

// httpClient sends every request on a new connection, and never through a
// proxy of the environment: what it sends goes to the pod network only.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   deadline,
}

// get sends GET path to addr.
func get(ctx context.Context, addr netip.AddrPort, path string) response {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+path, nil)
	if err != nil {
		return response{Err: err}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Pod: resp.Header.Get(podemu.PodHeader), Version: resp.Header.Get(podemu.VersionHeader), Took: time.Since(start), Err: err}
	if path != "/healthz" && err == nil {
		r.Err = json.Unmarshal(body, &r.Answer)
	}
	return r
}

// waitServing waits until addr's /healthz answers for pod at version.
func waitServing(ctx context.Context, g *WithT, addr netip.AddrPort, pod, version string) {
	g.Eventually(func(g Gomega) {
		r := get(ctx, addr, "/healthz")
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.Pod).To(Equal(pod))
		g.Expect(r.Version).To(Equal(version))
	}).WithTimeout(deadline).WithPolling(poll).Should(Succeed())
}

// dial connects to addr and hangs up.
func dial(addr netip.AddrPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

// waitRefused waits until nothing listens on addr any more.
func waitRefused(g *WithT, addr netip.AddrPort) {
	g.Eventually(func() error { return dial(addr) }).WithTimeout(deadline).WithPolling(poll).Should(MatchError(syscall.ECONNREFUSED))
}

// endpointsOf is what e reports of pod uid.
func endpointsOf(e *emulator, uid types.UID) []podemu.EndpointStatus {
	var out []podemu.EndpointStatus
	for _, ep := range e.Endpoints() {
		if ep.UID == uid {
			out = append(out, ep)
		}
	}
	return out
}

// A running pod answers on each declared port, as its image tag says: the
// tag is the version; -fail answers 500 (but /healthz); -slow answers after
// the slow latency.
func TestRunningPodsAnswerAsTheirImageSays(t *testing.T) {
	const slow = 300 * time.Millisecond
	ctx, g, ns, e := setup(t, podemu.Options{SlowLatency: slow})
	healthyIP, failingIP, slowIP := nextIP(), nextIP(), nextIP()
	healthy := createRunning(ctx, g, builders.Pod(ns, "healthy", "example.com/demo:v2", 8080, 9090), healthyIP)
	createRunning(ctx, g, builders.Pod(ns, "failing", "example.com/demo:v2-fail", 8080), failingIP)
	createRunning(ctx, g, builders.Pod(ns, "slow", "example.com/demo:v2-slow", 8080), slowIP)

	for _, port := range []uint16{8080, 9090} {
		addr := netip.AddrPortFrom(healthyIP, port)
		waitServing(ctx, g, addr, "healthy", "v2")
		r := get(ctx, addr, "/orders/42")
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.Status).To(Equal(http.StatusOK))
		g.Expect(r.Answer).To(Equal(podemu.Answer{Pod: "healthy", Namespace: ns, Container: "app", Image: "example.com/demo:v2", Version: "v2"}))
	}
	g.Expect(endpointsOf(e, healthy.UID)).To(HaveLen(2))
	g.Expect(endpointsOf(e, healthy.UID)[0].State).To(Equal(podemu.Listening))

	failing := netip.AddrPortFrom(failingIP, 8080)
	waitServing(ctx, g, failing, "failing", "v2-fail")
	r := get(ctx, failing, "/")
	g.Expect(r.Status).To(Equal(http.StatusInternalServerError))
	g.Expect(r.Pod).To(Equal("failing"))
	g.Expect(r.Version).To(Equal("v2-fail"))
	g.Expect(r.Answer.Error).NotTo(BeEmpty())

	slowAddr := netip.AddrPortFrom(slowIP, 8080)
	waitServing(ctx, g, slowAddr, "slow", "v2-slow")
	r = get(ctx, slowAddr, "/")
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(http.StatusOK))
	g.Expect(r.Took).To(BeNumerically(">=", slow))
}

// A pod that gets a deletionTimestamp stops accepting connections at once
// (its app got SIGTERM), while a request it was answering still completes.
func TestDeletionStopsListeningAndFinishesRequestsInFlight(t *testing.T) {
	const slow = 3 * time.Second
	ctx, g, ns, e := setup(t, podemu.Options{SlowLatency: slow})
	ip := nextIP()
	addr := netip.AddrPortFrom(ip, 8080)
	pod := builders.Pod(ns, "web", "example.com/demo:v1-slow", 8080)
	controllerutil.AddFinalizer(pod, testFinalizer)
	pod = createRunning(ctx, g, pod, ip)
	t.Cleanup(func() {
		_ = k8sClient.Patch(context.Background(), &corev1.Pod{ObjectMeta: pod.ObjectMeta}, client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`)))
	})
	waitServing(ctx, g, addr, "web", "v1-slow")

	inFlight := make(chan response, 1)
	go func() { inFlight <- get(ctx, addr, "/checkout") }()
	g.Eventually(func() int64 {
		var n int64
		for _, ep := range endpointsOf(e, pod.UID) {
			n += ep.InFlight
		}
		return n
	}).WithTimeout(deadline).WithPolling(poll).Should(BeEquivalentTo(1))

	g.Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
	waitRefused(g, addr)
	g.Expect(inFlight).NotTo(Receive(), "new connections are refused before the request in flight is answered")
	g.Expect(endpointsOf(e, pod.UID)).To(ConsistOf(HaveField("State", podemu.Draining)))

	var r response
	g.Eventually(inFlight).WithTimeout(deadline).Should(Receive(&r))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(http.StatusOK))
	g.Expect(r.Version).To(Equal("v1-slow"))
	g.Eventually(func() []podemu.EndpointStatus { return endpointsOf(e, pod.UID) }).WithTimeout(deadline).WithPolling(poll).Should(BeEmpty())
}

// An in-place image update stops the container as soon as the spec
// changes, and the container answers with the new version once the
// kubelet (here the test, as kwok's pod-image-restart stage does) reports
// it restarted. A restart alone is a new process too.
func TestInPlaceImageUpdateRestartsTheContainer(t *testing.T) {
	ctx, g, ns, e := setup(t, podemu.Options{})
	ip := nextIP()
	addr := netip.AddrPortFrom(ip, 8080)
	pod := createRunning(ctx, g, builders.Pod(ns, "web", "example.com/demo:v1", 8080), ip)
	waitServing(ctx, g, addr, "web", "v1")

	update(ctx, g, pod, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "example.com/demo:v2" })
	waitRefused(g, addr)
	g.Eventually(func() []podemu.EndpointStatus { return endpointsOf(e, pod.UID) }).WithTimeout(deadline).WithPolling(poll).Should(BeEmpty())

	updateStatus(ctx, g, pod, builders.RestartPodContainers)
	waitServing(ctx, g, addr, "web", "v2")
	r := get(ctx, addr, "/")
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Answer.Version).To(Equal("v2"))
	g.Expect(endpointsOf(e, pod.UID)).To(ConsistOf(HaveField("RestartCount", int32(1))))

	// The kubelet restarted the container without an image change (a
	// failed liveness probe, say): a new process on the same address.
	updateStatus(ctx, g, pod, func(p *corev1.Pod) { p.Status.ContainerStatuses[0].RestartCount++ })
	g.Eventually(func() []podemu.EndpointStatus { return endpointsOf(e, pod.UID) }).WithTimeout(deadline).WithPolling(poll).
		Should(ConsistOf(And(HaveField("RestartCount", int32(2)), HaveField("State", podemu.Listening))))
	waitServing(ctx, g, addr, "web", "v2")
}

// A container that is no longer running stops answering, and answers
// again once it runs again.
func TestContainerNotRunningStops(t *testing.T) {
	ctx, g, ns, _ := setup(t, podemu.Options{})
	ip := nextIP()
	addr := netip.AddrPortFrom(ip, 8080)
	pod := createRunning(ctx, g, builders.Pod(ns, "web", "example.com/demo:v1", 8080), ip)
	waitServing(ctx, g, addr, "web", "v1")

	updateStatus(ctx, g, pod, func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}}
		p.Status.ContainerStatuses[0].Ready = false
	})
	waitRefused(g, addr)

	updateStatus(ctx, g, pod, builders.RestartPodContainers)
	waitServing(ctx, g, addr, "web", "v1")
}

// A pod recreated under the same name and IP is another process (another
// UID), and so is another pod that takes a freed IP; a pod given an IP
// that another still listens on starts as soon as that one stops.
func TestPodsTakingOverAnAddress(t *testing.T) {
	ctx, g, ns, e := setup(t, podemu.Options{})
	ip := nextIP()
	addr := netip.AddrPortFrom(ip, 8080)
	first := createRunning(ctx, g, builders.Pod(ns, "web", "example.com/demo:v1", 8080), ip)
	waitServing(ctx, g, addr, "web", "v1")

	g.Expect(k8sClient.Delete(ctx, first, client.GracePeriodSeconds(0))).To(Succeed())
	waitRefused(g, addr)
	second := createRunning(ctx, g, builders.Pod(ns, "web", "example.com/demo:v2", 8080), ip)
	waitServing(ctx, g, addr, "web", "v2")
	g.Expect(e.Endpoints()).To(ConsistOf(HaveField("UID", second.UID)))

	// The IP of a pod about to go is given to another pod first: it
	// cannot listen yet, and does once the address is free.
	third := createRunning(ctx, g, builders.Pod(ns, "other", "example.com/demo:v3", 8080), ip)
	waitServing(ctx, g, addr, "web", "v2")
	g.Expect(k8sClient.Delete(ctx, second, client.GracePeriodSeconds(0))).To(Succeed())
	waitServing(ctx, g, addr, "other", "v3")
	g.Eventually(e.Endpoints).WithTimeout(deadline).WithPolling(poll).Should(ConsistOf(HaveField("UID", third.UID)))
}

// The emulator listens on no address outside its pod CIDR, whatever a pod
// status says.
func TestNoListenerOutsideThePodCIDR(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	ctx, g, ns, _ := setup(t, podemu.Options{Listen: func(proto, address string) (net.Listener, error) {
		mu.Lock()
		asked = append(asked, address)
		mu.Unlock()
		return network.Listen(proto, address)
	}})

	createRunning(ctx, g, builders.Pod(ns, "outside", "example.com/demo:v1", 8080), netip.MustParseAddr("198.19.99.5"))
	inside := nextIP()
	createRunning(ctx, g, builders.Pod(ns, "inside", "example.com/demo:v1", 8080), inside)
	waitServing(ctx, g, netip.AddrPortFrom(inside, 8080), "inside", "v1")
	mu.Lock()
	defer mu.Unlock()
	g.Expect(asked).To(Equal([]string{netip.AddrPortFrom(inside, 8080).String()}))
}

// Stopping the emulator stops every container as a SIGTERM would: no new
// connection, the requests in flight answered; Run returns once they are.
func TestRunStopsEveryContainerGracefully(t *testing.T) {
	const slow = 2 * time.Second
	ctx, g, ns, e := setup(t, podemu.Options{SlowLatency: slow})
	ip := nextIP()
	addr := netip.AddrPortFrom(ip, 8080)
	pod := createRunning(ctx, g, builders.Pod(ns, "web", "example.com/demo:v1-slow", 8080), ip)
	waitServing(ctx, g, addr, "web", "v1-slow")

	inFlight := make(chan response, 1)
	go func() { inFlight <- get(ctx, addr, "/") }()
	g.Eventually(func() []podemu.EndpointStatus { return endpointsOf(e, pod.UID) }).WithTimeout(deadline).WithPolling(poll).
		Should(ConsistOf(HaveField("InFlight", int64(1))))

	e.cancel()
	waitRefused(g, addr)
	g.Expect(e.done).NotTo(Receive(), "Run waits for the request in flight")
	var r response
	g.Eventually(inFlight).WithTimeout(deadline).Should(Receive(&r))
	g.Expect(r.Status).To(Equal(http.StatusOK))
	var err error
	g.Eventually(e.done).WithTimeout(deadline).Should(Receive(&err))
	g.Expect(err).NotTo(HaveOccurred())
	e.done <- nil // for the cleanup
}
