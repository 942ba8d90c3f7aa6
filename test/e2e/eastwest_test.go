package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/loadgen"
	"github.com/cafe-io/cafe/internal/registry"
)

// eastWestRate is the steady call rate of the consumer app: requests/s to
// its /call, each one call of the app under release through the registry.
const eastWestRate = 50

// consumerLag is how late the consumer applies the registry's changes
// (demo-app --registry-apply-delay): longer than the gateway's drain, so
// that only the registry provider's wait for the consumer's
// acknowledgement keeps its calls off an instance being stopped.
const consumerLag = 3 * time.Second

// consumerPort is the consumer instance's port on its host.
const consumerPort = 8081

// consumerZone is where the consumer runs: a classic host of its own,
// apart from the app's VM (zone-c).
const consumerZone = "zone-a"

// consumer is the demo app (v1) run by CAFE as a classic instance (a
// ClassicSet of one) in a classic host's network namespace, a consumer of
// an app through the shared registry: its /call picks an instance of the
// app, pod or VM, client-side, and forwards one request to it. It reaches
// the registry through its host agent's relay (CAFE_REGISTRY), as a VM
// reaches the bank's registry over the network.
type consumer struct {
	url  string
	name string
	svc  registry.Service
}

// startConsumer runs the consumer of the app's Service, lagging by
// consumerLag, and returns once it has called the app through the
// registry; it goes with the test's namespace.
func startConsumer(ctx context.Context, t *testing.T, g Gomega, a *trafficApp) *consumer {
	t.Helper()
	svc := registry.Service{Namespace: a.ns, Name: a.name}
	labels := map[string]string{"app": a.name + "-caller"}
	artifact := env.DemoApp.Artifact("v1", consumerPort)
	artifact.Env = []cafev1alpha1.ClassicEnvVar{
		{Name: "CAFE_CALL_SERVICE", Value: svc.String()},
		{Name: "CAFE_REGISTRY_APPLY_DELAY", Value: consumerLag.String()},
	}
	set := &cafev1alpha1.ClassicSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name + "-caller"},
		Spec: cafev1alpha1.ClassicSetSpec{
			Replicas:  ptr.To[int32](1),
			Selector:  &metav1.LabelSelector{MatchLabels: labels},
			Template:  cafev1alpha1.ClassicInstanceTemplate{Metadata: cafev1alpha1.ClassicInstanceTemplateMeta{Labels: labels}, Artifact: *artifact},
			Placement: cafev1alpha1.ClassicPlacement{Zone: consumerZone},
		},
	}
	g.Expect(k8sClient.Create(ctx, set)).To(Succeed())
	inst := &cafev1alpha1.ClassicInstance{}
	g.Eventually(func(g Gomega) {
		list := &cafev1alpha1.ClassicInstanceList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(a.ns), client.MatchingLabels(labels))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		*inst = list.Items[0]
		g.Expect(meta.IsStatusConditionTrue(inst.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition)).To(BeTrue(), "consumer status %+v", inst.Status)
	}).Should(Succeed(), "the consumer runs on a classic host of %s", consumerZone)
	host := classicHostIn(g, consumerZone)
	g.Expect(inst.Spec.HostName).To(Equal(host.Name))
	g.Expect(host.Network).NotTo(BeNil(), "the consumer's host has a network namespace of its own: it reaches the registry only through the relay")
	c := &consumer{url: fmt.Sprintf("http://%s:%d", host.Address, consumerPort), name: inst.Name, svc: svc}
	g.Eventually(func() int {
		resp, err := http.Get(c.url + "/call")
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}).Should(Equal(http.StatusOK), "the consumer calls %s through the registry", svc)
	return c
}

// expectAcknowledging: the consumer keeps an acknowledgement of the
// service's revisions in the registry, so the registry provider waits for
// it before an instance stops.
func (c *consumer) expectAcknowledging(ctx context.Context, g Gomega, reg *clientv3.Client) {
	resp, err := reg.Get(ctx, registry.ConsumersPrefix(c.svc), clientv3.WithPrefix())
	g.Expect(err).NotTo(HaveOccurred())
	var consumers []string
	for _, kv := range resp.Kvs {
		ack, err := registry.DecodeAck(string(kv.Key), kv.Value)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(kv.Lease).NotTo(BeZero(), "an acknowledgement lives under its consumer's lease")
		g.Expect(ack.Revision).To(BeNumerically(">", 0))
		consumers = append(consumers, strings.TrimPrefix(string(kv.Key), registry.ConsumersPrefix(c.svc)))
	}
	g.Expect(consumers).To(ContainElement(HavePrefix(c.name+"_")), "the consumer instance %s acknowledges %s", c.name, c.svc)
}

// startLoad calls the app through the consumer at eastWestRate until stop.
func (c *consumer) startLoad(ctx context.Context, t *testing.T, g Gomega) *load {
	return startLoadAt(ctx, t, g, "the consumer (east-west, registry)", loadgen.Config{URL: c.url + "/call", Rate: eastWestRate, Timeout: 10 * time.Second})
}

// registryClient is a client of the shared control plane's registry for
// the test's reads.
func registryClient(t *testing.T, g Gomega) *clientv3.Client {
	reg, err := clientv3.New(clientv3.Config{Endpoints: []string{env.ControlPlane.RegistryURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// registered lists the kinds and names registered for the service.
func registered(ctx context.Context, g Gomega, reg *clientv3.Client, svc registry.Service) map[string]string {
	resp, err := reg.Get(ctx, registry.InstancesPrefix(svc), clientv3.WithPrefix())
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		r, err := registry.DecodeRegistration(string(kv.Key), kv.Value)
		g.Expect(err).NotTo(HaveOccurred())
		out[r.Name] = r.Kind
	}
	return out
}

// eastWestDrain checks the registry provider's promise as it happens: an
// instance of the app, pod or VM, is operated on (a pod's image changed, a
// VM's package changed) only once the consumer has applied the registry
// revision that deregistered it. At each operation the API server's watch
// shows, it reads the registry at once: the object's address must not be
// registered, and the consumer's acknowledgement must be at or above the
// revision of the address's last deregistration (from the registry's
// history). The consumer lags consumerLag, so a release that did not wait
// for it is caught at its first operation.
type eastWestDrain struct {
	mu         sync.Mutex
	operations []string
	violations []string
	stop       context.CancelFunc
	done       chan struct{}
}

// watchEastWestDrain starts the check on app a's pods and classic
// instances until finish.
func watchEastWestDrain(ctx context.Context, g Gomega, a *trafficApp, c *consumer, reg *clientv3.Client) *eastWestDrain {
	ctx, cancel := context.WithCancel(ctx)
	d := &eastWestDrain{stop: cancel, done: make(chan struct{})}
	pods, err := k8sClient.Watch(ctx, &corev1.PodList{}, client.InNamespace(a.ns), client.MatchingLabels(a.labels))
	g.Expect(err).NotTo(HaveOccurred())
	vms, err := k8sClient.Watch(ctx, &cafev1alpha1.ClassicInstanceList{}, client.InNamespace(a.ns), client.MatchingLabels(a.labels))
	g.Expect(err).NotTo(HaveOccurred())
	go func() {
		defer close(d.done)
		defer pods.Stop()
		defer vms.Stop()
		seen := map[string]string{} // object → what it runs (image or package)
		for {
			var ev watch.Event
			var ok bool
			select {
			case <-ctx.Done():
				return
			case ev, ok = <-pods.ResultChan():
			case ev, ok = <-vms.ResultChan():
			}
			if !ok {
				d.record("", "a watch ended before the check did: operations may have been missed")
				return
			}
			name, runs, address := operand(ev.Object)
			if name == "" || ev.Type == watch.Deleted {
				continue
			}
			if before, known := seen[name]; known && before != runs && address.IsValid() {
				d.record(fmt.Sprintf("%s %s → %s", name, before, runs), d.checkDrained(ctx, reg, c, name, address))
			}
			seen[name] = runs
		}
	}()
	return d
}

// operand is what a watched object runs and the address it is registered
// at (invalid while it has none).
func operand(obj runtime.Object) (name, runs string, address netip.AddrPort) {
	switch o := obj.(type) {
	case *corev1.Pod:
		ip, _ := netip.ParseAddr(o.Status.PodIP)
		return "pod/" + o.Name, o.Spec.Containers[0].Image, netip.AddrPortFrom(ip, trafficPort)
	case *cafev1alpha1.ClassicInstance:
		addr, _ := netip.ParseAddrPort(o.Status.Address)
		return "vm/" + o.Name, o.Spec.Artifact.SHA256[:12], addr
	}
	return "", "", netip.AddrPort{}
}

// checkDrained reads the registry now: "" when address was deregistered at
// a revision the consumer has applied, else why not.
func (d *eastWestDrain) checkDrained(ctx context.Context, reg *clientv3.Client, c *consumer, name string, address netip.AddrPort) string {
	key := registry.InstanceKey(c.svc, address)
	now, err := reg.Get(ctx, key)
	if err != nil {
		return "reading the registry: " + err.Error()
	}
	if len(now.Kvs) > 0 {
		return fmt.Sprintf("operated on while still registered at %s", address)
	}
	acks, err := reg.Get(ctx, registry.ConsumersPrefix(c.svc), clientv3.WithPrefix(), clientv3.WithRev(now.Header.Revision))
	if err != nil {
		return "reading the acknowledgements: " + err.Error()
	}
	ack := int64(-1)
	for _, kv := range acks.Kvs {
		if strings.HasPrefix(strings.TrimPrefix(string(kv.Key), registry.ConsumersPrefix(c.svc)), c.name+"_") {
			a, err := registry.DecodeAck(string(kv.Key), kv.Value)
			if err != nil {
				return err.Error()
			}
			ack = a.Revision
		}
	}
	// The revision of the address's last deregistration, from history.
	history, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	deregistered := int64(0)
	for resp := range reg.Watch(history, key, clientv3.WithRev(1)) {
		if err := resp.Err(); err != nil {
			return "reading the registry's history: " + err.Error()
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete && ev.Kv.ModRevision <= now.Header.Revision {
				deregistered = ev.Kv.ModRevision
			}
		}
		if resp.Header.Revision >= now.Header.Revision {
			break
		}
	}
	switch {
	case deregistered == 0:
		return fmt.Sprintf("operated on but %s was never deregistered", address)
	case ack < deregistered:
		return fmt.Sprintf("operated on while the consumer had applied revision %d, below %d, which deregistered %s", ack, deregistered, address)
	}
	return ""
}

func (d *eastWestDrain) record(operation, violation string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if operation != "" {
		d.operations = append(d.operations, operation)
	}
	if violation != "" {
		d.violations = append(d.violations, strings.TrimSpace(operation+": "+violation))
	}
}

// finish stops the check and expects no violation, and operations on the
// pods and the VM alike.
func (d *eastWestDrain) finish(g Gomega, vm string) {
	d.stop()
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	g.Expect(d.violations).To(BeEmpty(), "operations before the consumer applied the deregistration")
	g.Expect(d.operations).To(ContainElement(HavePrefix("pod/")), "the check saw the pods operated on")
	g.Expect(d.operations).To(ContainElement(HavePrefix("vm/"+vm+" ")), "and the VM")
}
