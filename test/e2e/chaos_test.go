package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// The chaos tests fault the processes a release depends on — CAFE's
// controller process, kube-apiserver, etcd — at random moments of a
// release and then hold the release to the same standard as a quiet one:
// it completes, every pod changed exactly once per released revision (in
// place: same UID), and the API server's watch stream shows no pod operated
// on while it served and never fewer pods available than the water level.
// A watch that lost its place (410 Gone) leaves a Gap in the recording,
// which the checkers report as a violation: an inconclusive stream fails.

const (
	// chaosReplicas pods over three zones, released in batches of
	// chaosBatch (five groups of two pods per zone) with at most
	// chaosReplicas-chaosMinAvailable pods unavailable at once.
	chaosReplicas     = 30
	chaosBatch        = 6
	chaosMinAvailable = 28
	// chaosKills is how many SIGKILLs of the controller must land while a
	// release is in progress.
	chaosKills = 20
)

// chaosContext bounds a chaos test: longer than the package's usual bound,
// the faults slow the release down.
func chaosContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// chaosRand returns the random source of a fault schedule. Its seed is
// logged; CAFE_E2E_CHAOS_SEED replays a schedule (the timing of the
// controllers' work still varies from run to run).
func chaosRand(t *testing.T, g Gomega) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CAFE_E2E_CHAOS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		g.Expect(err).NotTo(HaveOccurred())
	}
	t.Logf("fault schedule seed %d (CAFE_E2E_CHAOS_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// chaosStrategy releases in five groups, at most two pods unavailable at
// once, each updated pod Ready for minReadySeconds before the next one is
// taken: 15 waves of at least that long, so that a release lasts long
// enough for the faults to land in it.
func chaosStrategy(minReadySeconds int32) cafev1alpha1.CafeDeploymentStrategy {
	return cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType:     cafev1alpha1.UpgradeTypeBatch,
		BatchSize:       ptr.To(intstr.FromInt32(chaosBatch)),
		MinAvailable:    ptr.To(intstr.FromInt32(chaosMinAvailable)),
		MinReadySeconds: minReadySeconds,
	}
}

// chaosDeployment creates the CafeDeployment the release tests fault — 30
// pods over three zones in InPlaceSets, five groups, minAvailable 28,
// minReadySeconds 3 — and waits until it runs v1 everywhere and its first
// release completed. It returns the pods' identities.
func chaosDeployment(ctx context.Context, g Gomega, ns, name string) (*cafev1alpha1.CafeDeployment, map[string]string, map[string]podIdentity) {
	podLabels := map[string]string{"app": name}
	g.Expect(k8sClient.Create(ctx, service(ns, name, podLabels))).To(Succeed())
	cd := cafeDeployment(ns, name, chaosReplicas, podLabels)
	cd.Spec.PodSetType = cafev1alpha1.PodSetTypeInPlaceSet
	cd.Spec.Strategy = chaosStrategy(3)
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, chaosReplicas, "example.com/app:v1"))
	waitForRelease(ctx, g, cd, releaseCompleted)
	g.Expect(waitForReadyEndpoints(ctx, ns, name, chaosReplicas)).To(Succeed())
	return cd, podLabels, before
}

// releaseCompleted: the controller saw the current spec, the release is
// Completed and every replica runs the new revision and is available.
func releaseCompleted(c *cafev1alpha1.CafeDeployment) bool {
	want := ptr.Deref(c.Spec.Replicas, 0)
	return c.Status.ObservedGeneration == c.Generation &&
		c.Status.Release.Phase == cafev1alpha1.ReleasePhaseCompleted &&
		c.Status.CurrentRevision == c.Status.UpdateRevision &&
		ptr.Deref(c.Status.UpdatedReplicas, 0) == want && ptr.Deref(c.Status.AvailableReplicas, 0) == want
}

// releasing reports whether the CafeDeployment's release is still in
// progress, read from the API server.
func releasing(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment) bool {
	now := &cafev1alpha1.CafeDeployment{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cd), now)).To(Succeed())
	return !releaseCompleted(now)
}

func setImage(ctx context.Context, g Gomega, cd *cafev1alpha1.CafeDeployment, image string) {
	g.Expect(update(ctx, cd, func(c *cafev1alpha1.CafeDeployment) {
		c.Spec.Template.Spec.Containers[0].Image = image
	})).To(Succeed())
}

// killSchedule SIGKILLs CAFE's controller process (a `cafe manager` child,
// see controllerProcess) at random moments. Each moment is drawn after the
// new child answers /readyz: either a random delay of up to 3 s (a kill
// while it starts, syncs its caches or works), or — half the time — the
// first change to the namespace's pods after it started (it is working)
// plus a random delay of up to 1 s. The delays are the fault's timing, not
// waits for readiness.
type killSchedule struct {
	t     *testing.T
	rng   *rand.Rand
	ns    string
	ctl   *controllerProcess
	since string // resourceVersion of the namespace's pods when the child started
}

func newKillSchedule(ctx context.Context, t *testing.T, g Gomega, rng *rand.Rand, ns string) *killSchedule {
	s := &killSchedule{t: t, rng: rng, ns: ns, ctl: runControllersInChild(ctx, t, g)}
	s.since = s.podsVersion(ctx, g)
	return s
}

func (s *killSchedule) podsVersion(ctx context.Context, g Gomega) string {
	list := &corev1.PodList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(s.ns))).To(Succeed())
	return list.ResourceVersion
}

// killWhile kills the controller at random moments while inProgress holds,
// until want kills landed, and returns how many landed while it held.
func (s *killSchedule) killWhile(ctx context.Context, g Gomega, what string, want int, inProgress func() bool) int {
	landed := 0
	for landed < want && inProgress() {
		why := s.moment(ctx, g)
		if !inProgress() {
			break
		}
		landed++
		s.ctl.kill(ctx, g, fmt.Sprintf("during %s, %s", what, why))
		s.since = s.podsVersion(ctx, g)
	}
	return landed
}

// moment waits for the next kill's moment and says what it was.
func (s *killSchedule) moment(ctx context.Context, g Gomega) string {
	if s.rng.IntN(2) == 0 {
		d := time.Duration(s.rng.Int64N(int64(3 * time.Second)))
		time.Sleep(d)
		return fmt.Sprintf("%v after it was ready", d.Round(time.Millisecond))
	}
	d := time.Duration(s.rng.Int64N(int64(time.Second)))
	started := time.Now()
	if !s.waitForPodChange(ctx, g) {
		return fmt.Sprintf("no pod changed within %v", time.Since(started).Round(time.Millisecond))
	}
	changed := time.Since(started)
	time.Sleep(d)
	return fmt.Sprintf("%v after a pod changed, %v after it was ready", d.Round(time.Millisecond), (changed + d).Round(time.Millisecond))
}

// waitForPodChange waits, at most 30 s, until a pod of the namespace has a
// resourceVersion above the one recorded when the child started.
func (s *killSchedule) waitForPodChange(ctx context.Context, g Gomega) bool {
	since, err := strconv.ParseUint(s.since, 10, 64)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return framework.WaitForList(ctx, k8sClient, &corev1.PodList{}, func(items []runtime.Object) bool {
		for _, o := range items {
			if rv, err := strconv.ParseUint(o.(*corev1.Pod).ResourceVersion, 10, 64); err == nil && rv > since {
				return true
			}
		}
		return false
	}, client.InNamespace(s.ns)) == nil
}

// imageHistory returns the images the pod's first container had on the
// watch stream, in order, each repeat of the previous one dropped, and the
// UIDs the pod name had.
func imageHistory(events []watchrec.Event, pod string) ([]string, []string) {
	var images, uids []string
	for _, ev := range watchrec.PodHistory(events, pod) {
		if img := ev.Pod.Spec.Containers[0].Image; len(images) == 0 || images[len(images)-1] != img {
			images = append(images, img)
		}
		if uid := string(ev.Pod.UID); !slices.Contains(uids, uid) {
			uids = append(uids, uid)
		}
	}
	return images, uids
}

// expectChangedOncePerRevision checks, on the watch stream, that every pod
// kept its UID and went through exactly the images of revisions, in order:
// one in-place change per released revision, none repeated, no flapping.
func expectChangedOncePerRevision(g Gomega, events []watchrec.Event, before map[string]podIdentity, revisions []string) {
	for name, id := range before {
		images, uids := imageHistory(events, name)
		g.Expect(uids).To(Equal([]string{string(id.UID)}), "pod %s was replaced", name)
		g.Expect(images).To(Equal(revisions), "images of pod %s on the watch stream", name)
		g.Expect(watchrec.CountPodSpecChanges(events, name)).To(Equal(len(revisions)-1), "spec changes of pod %s", name)
	}
}

// expectReleaseInvariants checks the recorded stream once it caught up:
// lossless, never below minAvailable, no gap; and every pod changed once
// per revision.
func expectReleaseInvariants(ctx context.Context, t *testing.T, g Gomega, rec *watchrec.Recorder, podLabels map[string]string, minAvailable int, before map[string]podIdentity, revisions []string) {
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	events := rec.Events()
	violations := append(watchrec.CheckLossless(events), watchrec.CheckWaterLevel(events, labels.SelectorFromSet(podLabels), minAvailable)...)
	for _, v := range violations {
		logPodsAround(t, events, v.ResourceVersion)
	}
	g.Expect(watchrec.Report(violations)).To(BeEmpty())
	expectChangedOncePerRevision(g, events, before, revisions)
}

// logPodsAround logs the pod events of the 40 resource versions up to rv
// and the 10 after: who took which pod out of service, and why.
func logPodsAround(t *testing.T, events []watchrec.Event, rv uint64) {
	var b strings.Builder
	for _, ev := range events {
		if ev.Pod == nil || ev.ResourceVersion+40 < rv || ev.ResourceVersion > rv+10 {
			continue
		}
		p := ev.Pod
		var conds []string
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				conds = append(conds, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
			}
		}
		writer := ""
		if n := len(p.ManagedFields); n > 0 {
			writer = p.ManagedFields[n-1].Manager + "/" + p.ManagedFields[n-1].Subresource
		}
		fmt.Fprintf(&b, "\n  rv=%d %s %s image=%s not-true=%v deleting=%v finalizers=%v last-writer=%s", ev.ResourceVersion, ev.Type, p.Name,
			p.Spec.Containers[0].Image, conds, p.DeletionTimestamp != nil, p.Finalizers, writer)
	}
	t.Logf("pod events around rv %d:%s", rv, b.String())
}

// CAFE's controller process is SIGKILLed at least 20 times at random
// moments of a 3-zone, 5-group release of 30 pods (see killSchedule), and
// started again each time. Should a release complete before its share of
// kills landed, the next image is released under the same schedule (at
// most four releases). Every release completes; each pod is updated in
// place exactly once per release; the watch stream shows no pod operated
// on while serving and never fewer than 28 available.
func TestChaosManagerKilledDuringRelease(t *testing.T) {
	g := NewWithT(t)
	ctx := chaosContext(t)
	rng := chaosRand(t, g)
	ns := framework.CreateNamespace(t, k8sClient)
	cd, podLabels, before := chaosDeployment(ctx, g, ns, "chaos")
	rec := framework.Record(ctx, t, g, env.Admin, ns)
	kills := newKillSchedule(ctx, t, g, rng, ns)

	revisions := []string{"example.com/app:v1"}
	landed := 0
	for _, image := range []string{"example.com/app:v2", "example.com/app:v3", "example.com/app:v4", "example.com/app:v5"} {
		if landed >= chaosKills {
			break
		}
		setImage(ctx, g, cd, image)
		revisions = append(revisions, image)
		started := time.Now()
		n := kills.killWhile(ctx, g, "the release of "+image, chaosKills-landed, func() bool { return releasing(ctx, g, cd) })
		landed += n
		waitForRelease(ctx, g, cd, releaseCompleted)
		t.Logf("the release of %s took %v; %d kills landed in it", image, time.Since(started).Round(time.Second), n)
		waitForSetRollout(ctx, g, ns, podLabels, chaosReplicas, image)
	}
	g.Expect(landed).To(BeNumerically(">=", chaosKills), "kills that landed while a release was in progress")
	expectReleaseInvariants(ctx, t, g, rec, podLabels, chaosMinAvailable, before, revisions)
}

// restartDuringRelease releases v2 and restarts component at one or two
// random moments of the release (once the first pod was touched, then
// after a random delay), with the watch recorded through cfg.
func restartDuringRelease(t *testing.T, component string, observer func(context.Context, Gomega) *rest.Config) {
	g := NewWithT(t)
	ctx := chaosContext(t)
	rng := chaosRand(t, g)
	ns := framework.CreateNamespace(t, k8sClient)
	cd, podLabels, before := chaosDeployment(ctx, g, ns, "restart")
	rec := framework.Record(ctx, t, g, observer(ctx, g), ns)

	setImage(ctx, g, cd, "example.com/app:v2")
	restarts := 1 + rng.IntN(2)
	for i := 1; i <= restarts; i++ {
		// The first restart once the release touched a pod, the next after
		// the controllers recovered and touched more.
		g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
			return updatedPodsTotal(ps, "example.com/app:v2") >= 3*(i-1) && slices.ContainsFunc(ps, func(p *corev1.Pod) bool {
				return p.Spec.Containers[0].Image == "example.com/app:v2"
			})
		})).To(Succeed())
		d := time.Duration(rng.Int64N(int64(3 * time.Second)))
		time.Sleep(d)
		inProgress := releasing(ctx, g, cd)
		start := time.Now()
		g.Expect(env.ControlPlane.Restart(ctx, component)).To(Succeed())
		t.Logf("restart %d/%d of %s, %v after the wait for pods on v2 (release in progress: %v), took %v", i, restarts, component, d.Round(time.Millisecond), inProgress, time.Since(start).Round(time.Millisecond))
		g.Expect(inProgress).To(BeTrue(), "the restart must land while the release is in progress")
	}
	waitForRelease(ctx, g, cd, releaseCompleted)
	waitForSetRollout(ctx, g, ns, podLabels, chaosReplicas, "example.com/app:v2")
	expectReleaseInvariants(ctx, t, g, rec, podLabels, chaosMinAvailable, before, []string{"example.com/app:v1", "example.com/app:v2"})
}

// kube-apiserver is restarted (SIGTERM, then started again with the same
// flags) once or twice in the middle of a release. CAFE's controllers,
// kube-controller-manager, the scheduler and kwok all talk to it and must
// reconnect; the release completes with every pod updated once, losslessly
// and above the water level.
//
// The recorder watches through a second kube-apiserver on the same etcd
// (as in an HA control plane): a restarted API server's watch cache starts
// at the current etcd revision, so a watch resumed through it from an
// earlier resourceVersion is answered 410 Gone and the stream would have a
// gap the checkers cannot judge.
func TestChaosAPIServerRestartedMidRelease(t *testing.T) {
	restartDuringRelease(t, "kube-apiserver", func(ctx context.Context, g Gomega) *rest.Config {
		cfg, stop, err := env.ControlPlane.AddAPIServer(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(stop)
		return cfg
	})
}

// etcd is restarted once or twice in the middle of a release (its data
// kept). The API server loses its storage meanwhile; the release completes
// with every pod updated once, losslessly and above the water level, and
// the watch stream through the API server has no gap.
func TestChaosEtcdRestartedMidRelease(t *testing.T) {
	restartDuringRelease(t, "etcd", func(context.Context, Gomega) *rest.Config { return env.Admin })
}

// chaosApp creates an app of 30 pods over three zones with the chaos
// strategy, publishes r1 and waits until it runs everywhere, then records
// r2 (image v2) without publishing it. It returns the pods' identities.
func chaosApp(ctx context.Context, g Gomega, ns, name string) (map[string]string, map[string]podIdentity) {
	app := publishedApp(ctx, g, ns, name, chaosReplicas, chaosStrategy(5))
	podLabels := map[string]string{cafev1alpha1.AppLabel: name}
	before := identities(waitForSetRollout(ctx, g, ns, podLabels, chaosReplicas, "example.com/app:v1"))
	recordR2(ctx, g, app, "example.com/app:v2")
	return podLabels, before
}

// An app of 30 pods over three zones is released r1 → r2 by a ReleaseOrder
// and, once the order succeeded, rolled back by an operator (`cafe release
// rollback`), with CAFE's controller process SIGKILLed at random moments
// of the release (up to 5 times) and at least 20 times during the
// rollback. The order ends RolledBack with every pod back on r1, each pod
// changed in place exactly once per revision (v1 → v2 → v1), losslessly
// and never below the water level; no state change is recorded twice in
// the audit trail, and `cafe audit verify` passes.
func TestChaosManagerKilledDuringAppRollback(t *testing.T) {
	g := NewWithT(t)
	ctx := chaosContext(t)
	rng := chaosRand(t, g)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels, before := chaosApp(ctx, g, ns, "shop")
	requester, _ := releaseUser(t, ctx, ns, "rae", "requester")
	approver, _ := releaseUser(t, ctx, ns, "abe", "approver")
	operator, _ := releaseUser(t, ctx, ns, "ola", "operator")
	auditor, _ := releaseUser(t, ctx, ns, "aud", "auditor")
	cli := func(kubeconfig string, args ...string) {
		out, err := cafeCLI(ctx, t, ns, kubeconfig, args...)
		g.Expect(err).NotTo(HaveOccurred(), out)
	}
	rec := framework.Record(ctx, t, g, env.Admin, ns)
	kills := newKillSchedule(ctx, t, g, rng, ns)
	open := func() bool {
		o := &cafev1alpha1.ReleaseOrder{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-v2"}, o)).To(Succeed())
		return !o.Status.Phase.IsFinished()
	}

	cli(requester, "release", "create", "shop-v2", "--title", "shop v2", "--app", "shop=r2")
	cli(approver, "release", "approve", "shop-v2", "--no-wait")
	waitForOrder(ctx, g, ns, "shop-v2", phaseIs(cafev1alpha1.OrderApproved))
	cli(operator, "release", "start", "shop-v2", "--no-wait")
	t.Logf("%d kills landed during the release", kills.killWhile(ctx, g, "the release of shop-r2", 5, open))
	released := waitForOrder(ctx, g, ns, "shop-v2", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	g.Expect(released.Status.Phase).To(Equal(cafev1alpha1.OrderSucceeded), "%s %+v", released.Status.Message, released.Status.Apps)
	waitForSetRollout(ctx, g, ns, podLabels, chaosReplicas, "example.com/app:v2")

	cli(operator, "release", "rollback", "shop-v2", "--no-wait", "--comment", "chaos")
	rollbackStarted := time.Now()
	// The kills start once the controller took the rollback up.
	waitForOrder(ctx, g, ns, "shop-v2", func(o *cafev1alpha1.ReleaseOrder) bool {
		return o.Status.Phase == cafev1alpha1.OrderRollingBack || o.Status.Phase == cafev1alpha1.OrderRolledBack
	})
	landed := kills.killWhile(ctx, g, "the rollback to shop-r1", chaosKills, open)
	final := waitForOrder(ctx, g, ns, "shop-v2", func(o *cafev1alpha1.ReleaseOrder) bool { return o.Status.Phase.IsFinished() })
	t.Logf("the rollback took %v; %d kills landed in it", time.Since(rollbackStarted).Round(time.Second), landed)
	g.Expect(final.Status.Phase).To(Equal(cafev1alpha1.OrderRolledBack), "%s %+v", final.Status.Message, final.Status.Apps)
	g.Expect(landed).To(BeNumerically(">=", chaosKills), "kills that landed while the rollback was in progress")
	waitForSetRollout(ctx, g, ns, podLabels, chaosReplicas, "example.com/app:v1")
	app := &cafev1alpha1.CafeAppService{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, app)).To(Succeed())
	g.Expect(app.Spec.PublishedRevision).To(Equal("shop-r1"))

	expectReleaseInvariants(ctx, t, g, rec, podLabels, chaosMinAvailable, before, []string{"example.com/app:v1", "example.com/app:v2", "example.com/app:v1"})

	// Nothing recorded twice however often the controller died between
	// acting and recording.
	seen := map[string]int{}
	for _, e := range final.Status.Audit {
		seen[e.Action+" "+e.Target+" "+e.Before+">"+e.After]++
	}
	for entry, n := range seen {
		g.Expect(n).To(Equal(1), "audit entry %q recorded %d times", entry, n)
	}
	g.Expect(seen).To(HaveKey("OrderPhase releaseorder/shop-v2 RollingBack>RolledBack"))
	out, err := cafeCLI(ctx, t, ns, auditor, "audit", "verify", "shop-v2")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring(fmt.Sprintf("OK   ReleaseOrder %s/shop-v2: %d entries", ns, len(final.Status.Audit))))
}
