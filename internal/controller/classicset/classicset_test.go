package classicset_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// One real kube-apiserver with CAFE installed and CAFE's manager running;
// real agents (in the test process, under their hosts' credentials) run
// the instances from the demo app's packages on loopback addresses. (The
// API server refuses loopback addresses in EndpointSlices, so these hosts'
// instances are behind no Service: the EndpointSlice side of the drain is
// tested end to end on the local control plane, where hosts have their own
// network namespaces.)
var suite = framework.ControllerSuite{Options: manager.Options{ClassicHostStaleAfter: 3 * time.Second}}

func TestMain(m *testing.M) {
	suite.Prepare = func(ctx context.Context, _ client.Client) error { return install.CAFE(ctx, suite.Config) }
	os.Exit(suite.Main(m))
}

// hosts runs n agents of zone on the loopback addresses 127.0.<third>.1..n
// and returns their names.
func hosts(t *testing.T, g Gomega, ns, zone string, third, n int) []string {
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("vm-%s-%d", ns, i)
		suite.RunAgent(t, g, framework.AgentOptions(t, name, zone, fmt.Sprintf("127.0.%d.%d", third, i)))
		names = append(names, name)
	}
	return names
}

// freePort is a TCP port nothing listens on now at any of addresses.
func freePort(g Gomega, addresses ...string) int32 {
	for {
		ln, err := net.Listen("tcp", net.JoinHostPort(addresses[0], "0"))
		g.Expect(err).NotTo(HaveOccurred())
		port := ln.Addr().(*net.TCPAddr).Port
		free := true
		for _, a := range addresses[1:] {
			other, err := net.Listen("tcp", net.JoinHostPort(a, fmt.Sprint(port)))
			if err != nil {
				free = false
				break
			}
			other.Close()
		}
		ln.Close()
		if free {
			return int32(port)
		}
	}
}

func newSet(ns, name, zone string, replicas int32, a *cafev1alpha1.ClassicArtifact) *cafev1alpha1.ClassicSet {
	labels := map[string]string{"app": name}
	return &cafev1alpha1.ClassicSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.ClassicSetSpec{
			Replicas:  ptr.To(replicas),
			Selector:  &metav1.LabelSelector{MatchLabels: labels},
			Template:  cafev1alpha1.ClassicInstanceTemplate{Metadata: cafev1alpha1.ClassicInstanceTemplateMeta{Labels: labels}, Artifact: *a},
			Placement: cafev1alpha1.ClassicPlacement{Zone: zone},
			UpdateStrategy: cafev1alpha1.InPlaceSetUpdateStrategy{
				MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			},
		},
	}
}

// scale sets the set's replicas with a merge patch (the controller writes
// its status meanwhile, so an update could conflict).
func scale(ctx context.Context, g Gomega, set *cafev1alpha1.ClassicSet, replicas int32) {
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)))
	g.Expect(suite.Client.Patch(ctx, setOf(ctx, g, set)(), patch)).To(Succeed())
}

func setOf(ctx context.Context, g Gomega, set *cafev1alpha1.ClassicSet) func() *cafev1alpha1.ClassicSet {
	return func() *cafev1alpha1.ClassicSet {
		got := &cafev1alpha1.ClassicSet{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(set), got)).To(Succeed())
		return got
	}
}

func instancesOf(ctx context.Context, g Gomega, set *cafev1alpha1.ClassicSet) []cafev1alpha1.ClassicInstance {
	list := &cafev1alpha1.ClassicInstanceList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(set.Namespace), client.MatchingLabels{cafev1alpha1.ClassicSetLabel: set.Name})).To(Succeed())
	return list.Items
}

// settled matches a set whose replicas instances are all available on its
// current template.
func settled(replicas int32) OmegaMatcher {
	return And(
		WithTransform(func(s *cafev1alpha1.ClassicSet) bool { return s.Status.ObservedGeneration == s.Generation }, BeTrue()),
		HaveField("Status.Replicas", replicas), HaveField("Status.AvailableReplicas", replicas),
		HaveField("Status.UpdatedAvailableReplicas", replicas),
	)
}

// versionAt asks the instance at address for / and returns the version it
// answers with.
func versionAt(address string) (string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + address + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var a appanswer.Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return a.Version, nil
}

// instanceLog records the ClassicInstance watch events of a namespace, in
// the API server's order, until the test ends.
type instanceLog struct {
	mu     sync.Mutex
	events []watch.Event
}

func recordInstances(ctx context.Context, t *testing.T, g Gomega, ns string) *instanceLog {
	wc, err := client.NewWithWatch(suite.Config, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &cafev1alpha1.ClassicInstanceList{}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(w.Stop)
	l := &instanceLog{}
	go func() {
		for ev := range w.ResultChan() {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// violations checks the lossless protocol and the budget on the recorded
// stream: an instance's package changes only while its gate is closed for
// an update (before and after the write), and never more than budget
// instances are out of traffic (gate closed or not Ready) at once after
// all of them were first serving.
func (l *instanceLog) violations(budget int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	last := map[string]*cafev1alpha1.ClassicInstance{}
	serving := false
	for _, ev := range l.events {
		inst, ok := ev.Object.(*cafev1alpha1.ClassicInstance)
		if !ok {
			out = append(out, fmt.Sprintf("watch error: %v", ev.Object))
			continue
		}
		if prev := last[inst.Name]; prev != nil && prev.Spec.Artifact.SHA256 != inst.Spec.Artifact.SHA256 {
			if prev.Spec.TrafficGate != cafev1alpha1.ClassicTrafficGateDrainForUpdate || inst.Spec.TrafficGate != cafev1alpha1.ClassicTrafficGateDrainForUpdate {
				out = append(out, fmt.Sprintf("rv %s: the package of %s changed with the gate %s → %s", inst.ResourceVersion, inst.Name, prev.Spec.TrafficGate, inst.Spec.TrafficGate))
			}
		}
		if ev.Type == watch.Deleted {
			delete(last, inst.Name)
		} else {
			last[inst.Name] = inst
		}
		out := 0
		for _, i := range last {
			if !i.GateOpen() || !i.IsReady() {
				out++
			}
		}
		serving = serving || out == 0
		if serving && out > budget {
			return append(outOfBudget(out, budget, inst), fmt.Sprintf("after %d events", len(l.events)))
		}
	}
	return out
}

// closed names the instances whose gate the stream shows set to gate.
func (l *instanceLog) closed(gate cafev1alpha1.ClassicTrafficGate) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, ev := range l.events {
		if inst, ok := ev.Object.(*cafev1alpha1.ClassicInstance); ok && inst.Spec.TrafficGate == gate && !seen[inst.Name] {
			seen[inst.Name] = true
			out = append(out, inst.Name)
		}
	}
	return out
}

func outOfBudget(out, budget int, at *cafev1alpha1.ClassicInstance) []string {
	return []string{fmt.Sprintf("rv %s: %d instances out of traffic, budget %d", at.ResourceVersion, out, budget)}
}

// A ClassicSet places its instances on the Ready hosts of its zone, one per
// host, and releases a new package to them one at a time by the lossless
// protocol: each instance's gate closes before its package changes, and
// opens once the new package is healthy. The instances answer with the new
// version at the end; scaling beyond the hosts says why in Placed.
func TestAClassicSetPlacesItsInstancesAndReleasesANewPackageLosslessly(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	names := hosts(t, g, ns, "zone-a-"+ns, 110, 3)
	port := freePort(g, "127.0.110.1", "127.0.110.2", "127.0.110.3")
	log := recordInstances(ctx, t, g, ns)

	set := newSet(ns, "web", "zone-a-"+ns, 3, d.Artifact("v1", port))
	g.Expect(suite.Client.Create(ctx, set)).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(settled(3))
	placed := map[string]bool{}
	for _, i := range instancesOf(ctx, g, set) {
		placed[i.Spec.HostName] = true
		g.Expect(versionAt(i.Status.Address)).To(Equal("v1"))
	}
	g.Expect(placed).To(HaveLen(3), "one instance per host")
	for _, h := range names {
		g.Expect(placed).To(HaveKey(h))
	}

	v2 := d.Artifact("v2", port)
	patch := client.MergeFrom(setOf(ctx, g, set)())
	updated := setOf(ctx, g, set)()
	updated.Spec.Template.Artifact = *v2
	g.Expect(suite.Client.Patch(ctx, updated, patch)).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(And(settled(3), HaveField("Status.UpdatedReplicas", int32(3))))
	for _, i := range instancesOf(ctx, g, set) {
		g.Expect(i.Spec.Artifact.SHA256).To(Equal(v2.SHA256))
		g.Expect(i.Spec.TrafficGate).To(Equal(cafev1alpha1.ClassicTrafficGateOpen))
		g.Expect(versionAt(i.Status.Address)).To(Equal("v2"))
	}
	g.Expect(log.violations(1)).To(BeEmpty())
	g.Expect(log.closed(cafev1alpha1.ClassicTrafficGateDrainForUpdate)).To(HaveLen(3), "each instance was drained for its update")

	// A fourth instance has no host left: the set says why.
	scale(ctx, g, set, 4)
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(setOf(ctx, g, set)().Status.Conditions, cafev1alpha1.ClassicSetPlacedCondition)
	}).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", cafev1alpha1.ClassicSetNoHostAvailableReason),
		HaveField("Message", ContainSubstring("1 of the instances wanted have no host: 3 classic hosts in zone zone-a-"+ns+" (3 already run one of this set)"))))

	// Scaling in drains and deletes the surplus instance.
	scale(ctx, g, set, 2)
	g.Eventually(setOf(ctx, g, set)).Should(settled(2))
	g.Eventually(func() []cafev1alpha1.ClassicInstance { return instancesOf(ctx, g, set) }).Should(HaveLen(2))
	g.Expect(log.violations(1)).To(BeEmpty())
	g.Expect(log.closed(cafev1alpha1.ClassicTrafficGateDrainForDelete)).To(HaveLen(1), "the surplus instance was drained before its deletion")
}

// A traffic system that still routes to an instance (its finalizer on the
// instance) holds the instance's update: the package does not change and
// the set says what it waits for, until the finalizer goes.
func TestATrafficFinalizerHoldsAnInstanceUpdate(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	hosts(t, g, ns, "zone-h-"+ns, 111, 1)
	port := freePort(g, "127.0.111.1")
	set := newSet(ns, "api", "zone-h-"+ns, 1, d.Artifact("v1", port))
	set.Spec.UpdateStrategy.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	g.Expect(suite.Client.Create(ctx, set)).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(settled(1))
	inst := instancesOf(ctx, g, set)[0]
	const holder = "traffic.cafe.io/test-registry"
	g.Expect(suite.Client.Patch(ctx, &inst, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":["`+holder+`"]}}`)))).To(Succeed())

	v2 := d.Artifact("v2", port)
	updated := setOf(ctx, g, set)()
	patch := client.MergeFrom(updated.DeepCopy())
	updated.Spec.Template.Artifact = *v2
	g.Expect(suite.Client.Patch(ctx, updated, patch)).To(Succeed())
	g.Eventually(func() *metav1.Condition {
		return meta.FindStatusCondition(setOf(ctx, g, set)().Status.Conditions, cafev1alpha1.ClassicSetInstancesUpToDateCondition)
	}).Should(And(HaveField("Reason", cafev1alpha1.InPlaceSetWaitingForTrafficReason), HaveField("Message", ContainSubstring(holder))))
	got := &cafev1alpha1.ClassicInstance{}
	g.Consistently(func() string {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(&inst), got)).To(Succeed())
		return got.Spec.Artifact.SHA256
	}, 2*time.Second).Should(Equal(inst.Spec.Artifact.SHA256), "the package waits while the traffic system holds the instance")
	g.Expect(got.Spec.TrafficGate).To(Equal(cafev1alpha1.ClassicTrafficGateDrainForUpdate))

	g.Expect(suite.Client.Patch(ctx, got, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(And(settled(1), HaveField("Status.UpdatedReplicas", int32(1))))
	g.Expect(versionAt(instancesOf(ctx, g, set)[0].Status.Address)).To(Equal("v2"))
}

// Bad input is refused by the API server with the field named.
func TestClassicSetSchema(t *testing.T) {
	ctx, _, ns := suite.Setup(t)
	a := &cafev1alpha1.ClassicArtifact{URL: "http://127.0.0.1:1/a.tar.gz", SHA256: fmt.Sprintf("%064d", 0), Command: []string{"bin/a"}, Port: 8080}
	tests := []struct {
		name   string
		mutate func(*cafev1alpha1.ClassicSet)
		want   string
	}{
		{"no zone or cell", func(s *cafev1alpha1.ClassicSet) { s.Spec.Placement = cafev1alpha1.ClassicPlacement{} }, "spec.placement: set zone, cell or both"},
		{"a name too long for its instances", func(s *cafev1alpha1.ClassicSet) { s.Name = fmt.Sprintf("%058d", 0) }, "metadata.name must be at most 57 characters"},
		{"negative replicas", func(s *cafev1alpha1.ClassicSet) { s.Spec.Replicas = ptr.To[int32](-1) }, "spec.replicas"},
		{"a bad maxUnavailable", func(s *cafev1alpha1.ClassicSet) {
			s.Spec.UpdateStrategy.MaxUnavailable = ptr.To(intstr.FromString("150%"))
		}, "spec.updateStrategy.maxUnavailable"},
		{"an artifact URL that is not http", func(s *cafev1alpha1.ClassicSet) { s.Spec.Template.Artifact.URL = "file:///etc/passwd" }, "must be an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(ns, "bad", "zone-x", 1, a)
			tt.mutate(s)
			err := suite.Client.Create(ctx, s)
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

// A set short of hosts is placed as soon as room frees up: another set's
// instance leaving the host (its port was taken) wakes it, well before the
// set's own periodic retry.
func TestASetWaitingForRoomIsPlacedWhenAnotherSetsInstanceLeaves(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	zone := "zone-r-" + ns
	hosts(t, g, ns, zone, 112, 1)
	port := freePort(g, "127.0.112.1")
	first := newSet(ns, "first", zone, 1, d.Artifact("v1", port))
	g.Expect(suite.Client.Create(ctx, first)).To(Succeed())
	g.Eventually(setOf(ctx, g, first)).Should(settled(1))
	second := newSet(ns, "second", zone, 1, d.Artifact("v2", port))
	g.Expect(suite.Client.Create(ctx, second)).To(Succeed())
	placed := func() *metav1.Condition {
		return meta.FindStatusCondition(setOf(ctx, g, second)().Status.Conditions, cafev1alpha1.ClassicSetPlacedCondition)
	}
	g.Eventually(placed).Should(And(HaveField("Reason", cafev1alpha1.ClassicSetNoHostAvailableReason),
		HaveField("Message", ContainSubstring(fmt.Sprintf("1 have port %d taken", port)))))

	scale(ctx, g, first, 0)
	g.Eventually(setOf(ctx, g, second), 10*time.Second).Should(settled(1), "placed once the first set's instance left")
	g.Expect(versionAt(instancesOf(ctx, g, second)[0].Status.Address)).To(Equal("v2"))
}

// A host whose agent dies (its Lease goes stale and CAFE's probe of it
// fails) is judged Failed by the node lifecycle, as a node would be: it is
// cordoned and the set's instance there asked to migrate. The set places
// a replacement on another host of the zone first, and deletes the old
// instance once the replacement is available.
func TestADeadHostsInstanceMovesToAnotherHostOfTheZone(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	zone := "zone-m-" + ns
	first, second := fmt.Sprintf("vm-%s-1", ns), fmt.Sprintf("vm-%s-2", ns)
	stopFirst := suite.RunAgent(t, g, framework.AgentOptions(t, first, zone, "127.0.116.1"))
	port := freePort(g, "127.0.116.1", "127.0.116.2")

	set := newSet(ns, "moved", zone, 1, d.Artifact("v1", port))
	g.Expect(suite.Client.Create(ctx, set)).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(settled(1))
	old := instancesOf(ctx, g, set)[0]
	g.Expect(old.Spec.HostName).To(Equal(first))
	suite.RunAgent(t, g, framework.AgentOptions(t, second, zone, "127.0.116.2"))

	stopFirst()
	g.Eventually(func() *metav1.Condition {
		h := &cafev1alpha1.ClassicHost{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: first}, h)).To(Succeed())
		return meta.FindStatusCondition(h.Status.Conditions, cafev1alpha1.ClassicHostHealthyCondition)
	}, 90*time.Second).Should(And(Not(BeNil()), HaveField("Reason", string(cafev1alpha1.NodeVerdictFailed)),
		HaveField("Message", And(ContainSubstring("Lease:"), ContainSubstring("KubeletProbe:")))))
	g.Eventually(func() []string {
		var on []string
		for _, i := range instancesOf(ctx, g, set) {
			on = append(on, i.Spec.HostName)
		}
		return on
	}, time.Minute).Should(Equal([]string{second}), "the replacement runs on the other host and the old instance is gone")
	g.Eventually(setOf(ctx, g, set)).Should(settled(1))
	moved := instancesOf(ctx, g, set)[0]
	g.Expect(versionAt(moved.Status.Address)).To(Equal("v1"))
	g.Expect(moved.Annotations).NotTo(HaveKey(cafev1alpha1.MigrationRequestedAnnotation))
}

// Sets created at once that want the same port on the zone's one host: one
// gets it, the others say the port is taken. Placements are serialised and
// read the hosts' load from the API server, so two sets placing at once
// cannot both take it (the second instance would fail to start).
func TestSetsPlacingAtOnceNeverShareAPort(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	zone := "zone-p-" + ns
	hosts(t, g, ns, zone, 113, 1)
	port := freePort(g, "127.0.113.1")
	var sets []*cafev1alpha1.ClassicSet
	for i := range 4 {
		set := newSet(ns, fmt.Sprintf("race-%d", i), zone, 1, d.Artifact("v1", port))
		sets = append(sets, set)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(sets))
	for i, set := range sets {
		wg.Go(func() { errs[i] = suite.Client.Create(ctx, set) })
	}
	wg.Wait()
	g.Expect(errors.Join(errs...)).NotTo(HaveOccurred())
	placedOf := func(set *cafev1alpha1.ClassicSet) *metav1.Condition {
		return meta.FindStatusCondition(setOf(ctx, g, set)().Status.Conditions, cafev1alpha1.ClassicSetPlacedCondition)
	}
	// The host may turn Ready only after the sets exist: wait for the
	// judgement on the port, not on readiness.
	g.Eventually(func(g Gomega) {
		placed := 0
		for _, set := range sets {
			c := placedOf(set)
			g.Expect(c).NotTo(BeNil())
			if c.Reason == cafev1alpha1.ClassicSetPlacedReason {
				placed++
				continue
			}
			g.Expect(c.Message).To(ContainSubstring(fmt.Sprintf("have port %d taken", port)), set.Name)
		}
		g.Expect(placed).To(Equal(1), "one set has the port")
	}).Should(Succeed())
	list := &cafev1alpha1.ClassicInstanceList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1), "one instance on the port")
}

// deletedOpen names the instances whose deletion the stream shows begun
// while their gate was not closed for deletion.
func (l *instanceLog) deletedOpen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		inst, ok := ev.Object.(*cafev1alpha1.ClassicInstance)
		if ok && (ev.Type == watch.Deleted || !inst.DeletionTimestamp.IsZero()) && inst.Spec.TrafficGate != cafev1alpha1.ClassicTrafficGateDrainForDelete {
			out = append(out, fmt.Sprintf("rv %s: %s deleted with its gate %s", inst.ResourceVersion, inst.Name, inst.Spec.TrafficGate))
		}
	}
	return out
}

// Deleting a ClassicSet (or the CafeDeployment above it) drains its
// instances before they go: the set's finalizer holds it while each
// instance's gate closes for deletion and the instance is deleted once
// nothing routes to it; then the set is gone.
func TestADeletedSetDrainsItsInstancesFirst(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set, log := settledPair(ctx, t, g, ns, "deleted", 114)
	g.Expect(setOf(ctx, g, set)().Finalizers).To(ContainElement(cafev1alpha1.ClassicSetDrainFinalizer))

	g.Expect(suite.Client.Delete(ctx, set)).To(Succeed())
	g.Eventually(func() error {
		return suite.Client.Get(ctx, client.ObjectKeyFromObject(set), &cafev1alpha1.ClassicSet{})
	}).Should(
		Satisfy(apierrors.IsNotFound), "the set goes once its instances are deleted")
	g.Eventually(func() []cafev1alpha1.ClassicInstance { return instancesOf(ctx, g, set) }).Should(BeEmpty())
	g.Expect(log.closed(cafev1alpha1.ClassicTrafficGateDrainForDelete)).To(HaveLen(2), "each instance was drained")
	g.Expect(log.deletedOpen()).To(BeEmpty())
}

// A new revision that changes only the instances' labels (a pods-only
// release of an app with classic units relabels them) moves them without a
// drain: no gate closes and no process restarts.
func TestALabelOnlyRevisionRelabelsWithoutADrain(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set, log := settledPair(ctx, t, g, ns, "relabelled", 115)
	pids := map[string]int64{}
	for _, i := range instancesOf(ctx, g, set) {
		pids[i.Name] = i.Status.Process.PID
	}

	before := setOf(ctx, g, set)()
	relabelled := before.DeepCopy()
	relabelled.Spec.Template.Metadata.Labels["cafe.io/app-revision"] = "r2"
	g.Expect(suite.Client.Patch(ctx, relabelled, client.MergeFrom(before))).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(And(settled(2), HaveField("Status.UpdatedReplicas", int32(2))))
	for _, i := range instancesOf(ctx, g, set) {
		g.Expect(i.Labels).To(HaveKeyWithValue("cafe.io/app-revision", "r2"))
		g.Expect(i.Status.Process.PID).To(Equal(pids[i.Name]), "the process of %s kept running", i.Name)
	}
	g.Expect(log.closed(cafev1alpha1.ClassicTrafficGateDrainForUpdate)).To(BeEmpty(), "no instance was drained")
}

// settledPair runs two agents of a zone of their own on 127.0.<third>.1
// and .2, and a set of two v1 instances there, settled; the namespace's
// instances are recorded from before the set.
func settledPair(ctx context.Context, t *testing.T, g Gomega, ns, name string, third int) (*cafev1alpha1.ClassicSet, *instanceLog) {
	zone := "zone-" + name + "-" + ns
	hosts(t, g, ns, zone, third, 2)
	port := freePort(g, fmt.Sprintf("127.0.%d.1", third), fmt.Sprintf("127.0.%d.2", third))
	log := recordInstances(ctx, t, g, ns)
	set := newSet(ns, name, zone, 2, framework.DemoApp(g).Artifact("v1", port))
	g.Expect(suite.Client.Create(ctx, set)).To(Succeed())
	g.Eventually(setOf(ctx, g, set)).Should(settled(2))
	return set, log
}
