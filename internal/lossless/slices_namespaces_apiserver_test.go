package lossless_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// ownPodLabel marks the pods this test's manager caches, as CAFE's
// manager caches only the pods it manages.
const ownPodLabel = "lossless.test/own"

// sliceEvents records the EndpointSlices a Source delivered.
type sliceEvents struct {
	mu   sync.Mutex
	seen []types.NamespacedName
}

func (e *sliceEvents) record(_ context.Context, obj client.Object) []reconcile.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, client.ObjectKeyFromObject(obj))
	return nil
}

func (e *sliceEvents) delivered() []types.NamespacedName {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.seen)
}

// startSlicesManager runs a manager whose pod cache holds the labelled
// pods only, with Slices set up on it and a Source recording what it
// delivers.
func startSlicesManager(ctx context.Context, g Gomega, idle time.Duration) (*lossless.Slices, *sliceEvents) {
	own, err := labels.NewRequirement(ownPodLabel, selection.Exists, nil)
	g.Expect(err).NotTo(HaveOccurred())
	mgr, err := manager.New(apiConfig, manager.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*own)},
		}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	s, err := lossless.SetupSlices(ctx, mgr)
	g.Expect(err).NotTo(HaveOccurred())
	s.SetSliceWatchIdle(idle)
	events := &sliceEvents{}
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	g.Expect(s.Source(events.record).Start(ctx, queue)).To(Succeed())
	go func() { _ = mgr.Start(ctx) }()
	return s, events
}

func TestSlicesWatchOnlyTheNamespacesOfCAFEsPods(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := 500 * time.Millisecond
	s, events := startSlicesManager(ctx, g, idle)

	managedNS, otherNS := framework.CreateNamespace(t, apiClient), framework.CreateNamespace(t, apiClient)
	own := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: managedNS, Name: "own", Labels: map[string]string{ownPodLabel: "yes"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
	}
	g.Expect(apiClient.Create(ctx, own)).To(Succeed())
	foreign := servingPodIn(ctx, g, otherNS, "foreign")
	g.Eventually(s.WatchedNamespaces).Should(ConsistOf(managedNS))

	// Another controller's slice is written first; CAFE's after it. Had the
	// other namespace been watched, its event would have come by the time
	// the later one did.
	foreignSlice := endpointSlice(foreign, true)
	g.Expect(apiClient.Create(ctx, foreignSlice)).To(Succeed())
	ownSlice := endpointSlice(own, true)
	g.Expect(apiClient.Create(ctx, ownSlice)).To(Succeed())
	g.Eventually(events.delivered).Should(ContainElement(client.ObjectKeyFromObject(ownSlice)))
	g.Expect(events.delivered()).NotTo(ContainElement(client.ObjectKeyFromObject(foreignSlice)))
	g.Expect(s.WatchedNamespaces()).To(ConsistOf(managedNS))

	// The drain check reads the managed namespace's slices from the watch.
	listing, err := s.ForPod(ctx, own)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(listing).To(HaveLen(1))
	g.Expect(listing[0].Name).To(Equal(ownSlice.Name))

	// Once CAFE's last pod there is gone, the watch goes after idle.
	g.Expect(apiClient.Delete(ctx, own, client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(s.WatchedNamespaces).Should(BeEmpty())

	// A drain check in an unwatched namespace watches it again, reads a
	// synced cache, and lets it go again when no pod of CAFE's is there.
	listing, err = s.ForPod(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: managedNS, Name: own.Name, ResourceVersion: own.ResourceVersion}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(listing).To(HaveLen(1))
	g.Expect(listing[0].Endpoints[0].Conditions.Ready).To(Equal(ptr.To(true)))
	g.Eventually(s.WatchedNamespaces).Should(BeEmpty())
}
