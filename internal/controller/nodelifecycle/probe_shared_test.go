package nodelifecycle

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
)

// Nodes that publish the same kubelet address and port share one kubelet
// (kwok's server answers for all its nodes): one probe per endpoint and
// period answers for each of them, and its failure counts against each.
func TestProbeAsksEachKubeletEndpointOncePerPeriod(t *testing.T) {
	g := NewWithT(t)
	node := kubeletNode
	reader := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		node("shared-1", "127.0.0.1", 10250), node("shared-2", "127.0.0.1", 10250), node("shared-3", "127.0.0.1", 10250),
		node("own", "127.0.0.2", 10250), node("no-endpoint", "127.0.0.3", 0),
	).Build()
	policy := probingPolicy(cafev1alpha1.DefaultNodeLifecyclePolicySpec().Probe.PeriodSeconds)
	var mu sync.Mutex
	var probed []string
	now := time.Unix(1_000_000, 0)
	p := &Prober{
		Reader: reader,
		Policy: func() cafev1alpha1.NodeLifecyclePolicySpec { return policy },
		Now:    func() time.Time { return now },
		Probe: func(_ context.Context, endpoint string, _ time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			probed = append(probed, endpoint)
			if endpoint == "127.0.0.1:10250" {
				return errors.New("connection refused")
			}
			return nil
		},
		results: map[string]*ProbeResult{}, last: map[string]time.Time{},
	}

	p.round(context.Background())
	slices.Sort(probed)
	g.Expect(probed).To(Equal([]string{"127.0.0.1:10250", "127.0.0.2:10250"}), "one probe per distinct endpoint")
	for _, name := range []string{"shared-1", "shared-2", "shared-3"} {
		g.Expect(p.Result(name)).NotTo(BeNil(), name)
		g.Expect(p.Result(name).ConsecutiveFailures).To(Equal(1), name)
		g.Expect(p.Result(name).Endpoint).To(Equal("127.0.0.1:10250"), name)
	}
	g.Expect(p.Result("own").ConsecutiveFailures).To(Equal(0))
	g.Expect(p.Result("no-endpoint")).NotTo(BeNil())
	g.Expect(p.Result("no-endpoint").Endpoint).To(BeEmpty())

	// Within the period nothing is probed again; after it, each endpoint once.
	probed = nil
	now = now.Add(seconds(policy.Probe.PeriodSeconds) / 2)
	p.round(context.Background())
	g.Expect(probed).To(BeEmpty())
	now = now.Add(seconds(policy.Probe.PeriodSeconds))
	p.round(context.Background())
	g.Expect(probed).To(HaveLen(2))
	g.Expect(p.Result("shared-2").ConsecutiveFailures).To(Equal(2))

	// A node that goes loses its record; its endpoint is forgotten once no
	// node publishes it.
	g.Expect(reader.Delete(context.Background(), node("own", "", 0))).To(Succeed())
	now = now.Add(seconds(policy.Probe.PeriodSeconds))
	p.round(context.Background())
	g.Expect(p.Result("own")).To(BeNil())
	p.mu.Lock()
	g.Expect(p.last).NotTo(HaveKey("127.0.0.2:10250"))
	p.mu.Unlock()
}

// Between rounds the prober sleeps until the next probe falls due, not a
// fixed second: with every node behind one endpoint (kwok) that is one
// round per period instead of a node list every second.
func TestProberSleepsUntilTheNextProbeIsDue(t *testing.T) {
	g := NewWithT(t)
	reader := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(kubeletNode("a", "127.0.0.1", 10250)).Build()
	policy := probingPolicy(30)
	now := time.Unix(1_000_000, 0)
	p := &Prober{
		Reader:  reader,
		Policy:  func() cafev1alpha1.NodeLifecyclePolicySpec { return policy },
		Now:     func() time.Time { return now },
		Probe:   func(context.Context, string, time.Duration) error { return nil },
		results: map[string]*ProbeResult{}, last: map[string]time.Time{},
	}
	g.Expect(p.round(context.Background())).To(Equal(30*time.Second), "just probed: due again a period later")
	now = now.Add(20 * time.Second)
	g.Expect(p.round(context.Background())).To(Equal(10*time.Second), "nothing due: sleep the rest of the period")
	now = now.Add(10*time.Second - time.Millisecond)
	g.Expect(p.round(context.Background())).To(Equal(minProbeWait), "due in a moment: never a busy loop")

	policy.Signals = slices.DeleteFunc(policy.Signals, func(s cafev1alpha1.NodeSignal) bool { return s == cafev1alpha1.SignalKubeletProbe })
	g.Expect(p.round(context.Background())).To(Equal(idleProbeWait), "probe off: only a wake-up or the safety net")

	empty := &Prober{Reader: fake.NewClientBuilder().WithScheme(scheme.New()).Build(), Policy: func() cafev1alpha1.NodeLifecyclePolicySpec { return probingPolicy(30) },
		Now: func() time.Time { return now }, results: map[string]*ProbeResult{}, last: map[string]time.Time{}}
	g.Expect(empty.round(context.Background())).To(Equal(idleProbeWait), "no kubelet endpoint known")
}

// A node that appears while the prober sleeps is probed when the prober is
// woken (each node lifecycle pass wakes it; a new node starts a pass), not
// a period later.
func TestProberWokenProbesANewNodeAtOnce(t *testing.T) {
	g := NewWithT(t)
	reader := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(kubeletNode("old", "127.0.0.1", 10250)).Build()
	var mu sync.Mutex
	probed := map[string]int{}
	p := &Prober{
		Reader: reader,
		// The longest period the API allows: without the wake-up the new
		// node would wait five minutes.
		Policy: func() cafev1alpha1.NodeLifecyclePolicySpec { return probingPolicy(300) },
		Probe: func(_ context.Context, endpoint string, _ time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			probed[endpoint]++
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	probes := func(endpoint string) func() int {
		return func() int { mu.Lock(); defer mu.Unlock(); return probed[endpoint] }
	}
	g.Eventually(probes("127.0.0.1:10250")).Should(Equal(1), "the first round probes the known node")

	g.Expect(reader.Create(ctx, kubeletNode("new", "127.0.0.2", 10250))).To(Succeed())
	p.Wake()
	g.Eventually(probes("127.0.0.2:10250")).Should(Equal(1), "woken, the prober finds and probes the new node")
	g.Expect(p.Result("new")).NotTo(BeNil())
	g.Expect(probes("127.0.0.1:10250")()).To(Equal(1), "the old node's probe is not due again for a period")
}

func kubeletNode(name, ip string, port int32) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

func probingPolicy(periodSeconds int32) cafev1alpha1.NodeLifecyclePolicySpec {
	policy := cafev1alpha1.DefaultNodeLifecyclePolicySpec()
	if !policy.SignalEnabled(cafev1alpha1.SignalKubeletProbe) {
		policy.Signals = append(policy.Signals, cafev1alpha1.SignalKubeletProbe)
	}
	policy.Probe.PeriodSeconds = periodSeconds
	return policy
}
