package watchrec

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// These tests drive the recorder's list/watch/re-list logic through client-go's fake
// clientset with scripted lists and watches. They do not prove anything about a real
// API server (the e2e tests do); they prove what the recorder does with each answer.

// scriptedAPI answers LIST with the current scripted state and hands each WATCH to
// the test as a FakeWatcher, with the resource version it asked for.
type scriptedAPI struct {
	client *fake.Clientset

	mu    sync.Mutex
	lists map[string]runtime.Object

	watches map[string]chan openedWatch
}

type openedWatch struct {
	w    *watch.FakeWatcher
	opts metav1.ListOptions
}

func newScriptedAPI() *scriptedAPI {
	api := &scriptedAPI{
		client: fake.NewClientset(),
		lists:  map[string]runtime.Object{},
		watches: map[string]chan openedWatch{
			"pods":           make(chan openedWatch, 10),
			"endpointslices": make(chan openedWatch, 10),
		},
	}
	for resource := range api.watches {
		api.client.PrependReactor("list", resource, func(k8stesting.Action) (bool, runtime.Object, error) {
			api.mu.Lock()
			defer api.mu.Unlock()
			return true, api.lists[resource].DeepCopyObject(), nil
		})
		api.client.PrependWatchReactor(resource, func(a k8stesting.Action) (bool, watch.Interface, error) {
			w := watch.NewFake()
			api.watches[resource] <- openedWatch{w: w, opts: a.(k8stesting.WatchActionImpl).GetListOptions()}
			return true, w, nil
		})
	}
	return api
}

func (api *scriptedAPI) setPods(rv uint64, pods ...*corev1.Pod) {
	l := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(rv, 10)}}
	for _, p := range pods {
		l.Items = append(l.Items, *p)
	}
	api.mu.Lock()
	api.lists["pods"] = l
	api.mu.Unlock()
}

func (api *scriptedAPI) setSlices(rv uint64, slices ...*discoveryv1.EndpointSlice) {
	l := &discoveryv1.EndpointSliceList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(rv, 10)}}
	for _, s := range slices {
		l.Items = append(l.Items, *s)
	}
	api.mu.Lock()
	api.lists["endpointslices"] = l
	api.mu.Unlock()
}

// nextWatch returns the next watch the recorder opened on resource.
func (api *scriptedAPI) nextWatch(g Gomega, resource string) openedWatch {
	var ow openedWatch
	g.Eventually(api.watches[resource]).WithTimeout(5 * time.Second).Should(Receive(&ow))
	return ow
}

func atRV[T interface{ SetResourceVersion(string) }](obj T, rv uint64) T {
	obj.SetResourceVersion(strconv.FormatUint(rv, 10))
	return obj
}

// fastRetries keeps the recorder's backoff short in tests.
func fastRetries(o *options) {
	o.minBackoff, o.maxBackoff, o.pollInterval = time.Millisecond, 10*time.Millisecond, time.Millisecond
}

func rvs(events []Event) []uint64 {
	var out []uint64
	for _, ev := range events {
		out = append(out, ev.ResourceVersion)
	}
	return out
}

func TestRecorderListsWatchesResumesAndRelists(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	api := newScriptedAPI()
	api.setPods(100, atRV(pod("web-0"), 90))
	api.setSlices(100, atRV(endpointSlice("web-abc", readyEndpoint("web-0")), 95), atRV(endpointSlice("web-old"), 96), atRV(endpointSlice("web-same"), 97))

	rec, err := StartWithClient(ctx, api.client, testNamespace, fastRetries)
	g.Expect(err).NotTo(HaveOccurred())
	defer rec.Stop()

	// Start returns with both initial lists in the log.
	initial := rec.Events()
	g.Expect(rvs(initial)).To(Equal([]uint64{90, 95, 96, 97}))
	for _, ev := range initial {
		g.Expect(ev.Type).To(Equal(Added))
		g.Expect(ev.Synthetic).To(BeTrue())
	}

	// Both watches resume from their list, with bookmarks.
	pw := api.nextWatch(g, "pods")
	sw := api.nextWatch(g, "endpointslices")
	g.Expect(pw.opts.ResourceVersion).To(Equal("100"))
	g.Expect(pw.opts.AllowWatchBookmarks).To(BeTrue())
	g.Expect(sw.opts.ResourceVersion).To(Equal("100"))

	// The slice watch delivers its drain (rv 102) before the pod watch delivers the
	// gate turning False (rv 101); the log is in resource-version order anyway.
	sw.w.Modify(atRV(endpointSlice("web-abc", drainedEndpoint("web-0")), 102))
	pw.w.Modify(atRV(pod("web-0", withReady(false)), 101))
	pw.w.Modify(atRV(pod("web-0", withReady(false), withImage("web:v2")), 103))
	g.Eventually(func() []uint64 { return rvs(rec.Events()) }).Should(Equal([]uint64{90, 95, 96, 97, 101, 102, 103}))
	g.Expect(CheckLossless(rec.Events())).To(BeEmpty())

	// A watch the server closes is resumed from the last event, without a gap.
	pw.w.Stop()
	pw = api.nextWatch(g, "pods")
	g.Expect(pw.opts.ResourceVersion).To(Equal("103"))

	// Bookmarks move the watch on without adding events.
	sw.w.Action(watch.Bookmark, atRV(&discoveryv1.EndpointSlice{}, 104))
	sw.w.Action(watch.Bookmark, atRV(&discoveryv1.EndpointSlice{}, 105))

	// An expired watch forces a re-list, which records a gap and the state it found:
	// web-abc changed, web-def appeared, web-old vanished, web-same did not change.
	api.setSlices(110, atRV(endpointSlice("web-abc", readyEndpoint("web-0")), 108), atRV(endpointSlice("web-def"), 109), atRV(endpointSlice("web-same"), 97))
	sw.w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version: 105"})
	sw = api.nextWatch(g, "endpointslices")
	g.Expect(sw.opts.ResourceVersion).To(Equal("110"))

	events := rec.Events()
	gaps := Gaps(events)
	g.Expect(gaps).To(HaveLen(1))
	g.Expect(gaps[0].ResourceVersion).To(Equal(uint64(105)), "the gap starts where the watch was, bookmarks included")
	g.Expect(gaps[0].Message).To(ContainSubstring("re-listed at resourceVersion 110"))
	tail := events[len(events)-4:]
	g.Expect(tail[0].Type).To(Equal(Gap))
	g.Expect([]string{tail[1].String(), tail[2].String(), tail[3].String()}).To(Equal([]string{
		"#9 rv=108 MODIFIED EndpointSlice/web-abc (from list)",
		"#10 rv=109 ADDED EndpointSlice/web-def (from list)",
		"#11 rv=110 DELETED EndpointSlice/web-old (from list)",
	}))
	g.Expect(Report(CheckLossless(events))).To(ContainSubstring("gap"))
	same := 0
	for _, ev := range events {
		if ev.Name() == "web-same" {
			same++
		}
	}
	g.Expect(same).To(Equal(1), "an object the gap did not change is not recorded again")

	// Stop ends both watches and waits for them.
	rec.Stop()
	g.Expect(pw.w.IsStopped()).To(BeTrue())
	g.Expect(sw.w.IsStopped()).To(BeTrue())
	rec.Stop()
}

func TestRecorderWaitForSync(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	api := newScriptedAPI()
	api.setPods(100, atRV(pod("web-0"), 90))
	api.setSlices(100)
	rec, err := StartWithClient(ctx, api.client, testNamespace, fastRetries)
	g.Expect(err).NotTo(HaveOccurred())
	defer rec.Stop()
	pw := api.nextWatch(g, "pods")
	api.nextWatch(g, "endpointslices")

	// Nothing changed since the lists, but the API server's revision moved on (other
	// namespaces wrote): the recorded state equals a fresh list, so it is in sync.
	api.setPods(150, atRV(pod("web-0"), 90))
	api.setSlices(150)
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())

	// A pod change the watch has not delivered yet keeps it waiting...
	api.setPods(160, atRV(pod("web-0", withImage("web:v2")), 160))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	g.Expect(rec.WaitForSync(short)).To(MatchError(ContainSubstring("waiting for the Pod watch to reach resourceVersion 160")))

	// ...until it arrives.
	done := make(chan error, 1)
	go func() { done <- rec.WaitForSync(ctx) }()
	pw.w.Modify(atRV(pod("web-0", withImage("web:v2")), 160))
	g.Eventually(done).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
	g.Expect(CountPodSpecChanges(rec.Events(), "web-0")).To(Equal(1))

	// A watch already past the list's revision is in sync, although its state no
	// longer equals the list.
	api.setPods(170, atRV(pod("web-0", withImage("web:v3")), 170))
	pw.w.Modify(atRV(pod("web-0", withImage("web:v3")), 170))
	pw.w.Modify(atRV(pod("web-0", withImage("web:v4")), 180))
	g.Eventually(func() int { return len(rec.Events()) }).Should(Equal(4))
	bounded, cancelBounded := context.WithTimeout(ctx, 2*time.Second)
	defer cancelBounded()
	g.Expect(rec.WaitForSync(bounded)).To(Succeed())

	// A stopped recorder cannot catch up, and says so at once.
	api.setPods(190, atRV(pod("web-0", withImage("web:v5")), 190))
	rec.Stop()
	g.Expect(rec.WaitForSync(ctx)).To(MatchError(ContainSubstring("the recorder stopped")))
}

func TestRecorderMarksPodsLeavingTheSelectorAsModified(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	api := newScriptedAPI()
	api.setPods(100, atRV(pod("web-0"), 90))
	api.setSlices(100)
	rec, err := StartWithClient(ctx, api.client, testNamespace, fastRetries,
		WithPodSelector(labels.SelectorFromSet(labels.Set{"app": "web"})))
	g.Expect(err).NotTo(HaveOccurred())
	defer rec.Stop()
	pw := api.nextWatch(g, "pods")
	g.Expect(pw.opts.LabelSelector).To(Equal("app=web"))

	// The API server reports a pod relabelled out of the selector as DELETED.
	pw.w.Delete(atRV(pod("web-0", withLabels(map[string]string{"app": "quarantine"})), 101))
	pw.w.Delete(atRV(pod("web-1", withDeletionTimestamp()), 102))

	g.Eventually(func() int { return len(rec.Events()) }).Should(Equal(3))
	events := rec.Events()
	g.Expect(events[1].Type).To(Equal(Modified))
	g.Expect(events[1].LeftFilter).To(BeTrue())
	g.Expect(events[2].Type).To(Equal(Deleted))
	g.Expect(events[2].LeftFilter).To(BeFalse())
	g.Expect(CheckLossless(events)).To(BeEmpty(), "leaving the selector is not a deletion")
}

func TestRecorderEventsAreCopies(t *testing.T) {
	g := NewWithT(t)
	api := newScriptedAPI()
	api.setPods(100, atRV(pod("web-0"), 90))
	api.setSlices(100)
	rec, err := StartWithClient(t.Context(), api.client, testNamespace, fastRetries)
	g.Expect(err).NotTo(HaveOccurred())
	defer rec.Stop()

	rec.Events()[0].Pod.Spec.Containers[0].Image = "changed"

	g.Expect(rec.Events()[0].Pod.Spec.Containers[0].Image).To(Equal("web:v1"))
}

func TestStartRejectsResourceVersionsThatAreNotRevisions(t *testing.T) {
	g := NewWithT(t)
	api := newScriptedAPI()
	api.setPods(100)
	api.setSlices(100)
	api.lists["endpointslices"].(*discoveryv1.EndpointSliceList).ResourceVersion = "opaque-token"

	_, err := StartWithClient(t.Context(), api.client, testNamespace, fastRetries)

	g.Expect(err).To(MatchError(ContainSubstring("etcd-backed API server")))
}

func TestRecorderDoesNotJudgeWatchEventsBeforeTheLaterInitialList(t *testing.T) {
	g := NewWithT(t)
	api := newScriptedAPI()
	// The pods are listed at 100 and the slices only at 110: a pod change at 105
	// cannot be judged, since the slices' history before 110 is unknown.
	api.setPods(100, atRV(pod("web-0"), 90))
	api.setSlices(110, atRV(endpointSlice("web-abc", readyEndpoint("web-0")), 108))
	rec, err := StartWithClient(t.Context(), api.client, testNamespace, fastRetries)
	g.Expect(err).NotTo(HaveOccurred())
	defer rec.Stop()
	pw := api.nextWatch(g, "pods")
	g.Expect(pw.opts.ResourceVersion).To(Equal("100"))

	pw.w.Modify(atRV(pod("web-0", withImage("web:v2")), 105))
	pw.w.Modify(atRV(pod("web-0", withImage("web:v3")), 111))

	g.Eventually(func() int { return len(rec.Events()) }).Should(Equal(4))
	events := rec.Events()
	g.Expect(events[1].ResourceVersion).To(Equal(uint64(105)))
	g.Expect(events[1].Synthetic).To(BeTrue())
	g.Expect(events[3].ResourceVersion).To(Equal(uint64(111)))
	g.Expect(events[3].Synthetic).To(BeFalse())
	violations := CheckLossless(events)
	g.Expect(violations).To(HaveLen(1))
	g.Expect(violations[0].ResourceVersion).To(Equal(uint64(111)))
}
