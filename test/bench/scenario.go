package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// scenario is one way of releasing the app.
type scenario struct {
	// Key names the scenario on the command line and in namespaces.
	Key   string
	Title string
	// Workload is nil for a scenario that cannot run yet.
	Workload       workload
	NotImplemented string
	// NodeFailure marks the node-failure scenario, which releases nothing
	// (runNodeFailure).
	NodeFailure bool
	// Traffic marks the traffic scenario, which runs on a control plane of
	// its own, with the gateway (runTraffic).
	Traffic bool
	// Classic marks the classic scenario, which runs on a control plane of
	// its own, with the gateway and classic hosts (benchmarkClassic).
	Classic bool
	// IAM marks the IAM projection scenario, which runs on a control plane
	// of its own (benchmarkIAM).
	IAM bool
}

// runResult is one release of one scenario.
type runResult struct {
	Scenario string
	Run      int
	// Completed is false when the release did not finish in time; Problem
	// then says what was seen.
	Completed bool
	Problem   string
	Pods      int
	// Wall is from the image change until the pods were settled on v2
	// (see podTally.settled); ControllerDone until the workload's own
	// status said so too.
	Wall           time.Duration
	ControllerDone time.Duration
	Delta          delta
	// Groups are the durations of the release groups, for workloads that
	// record them.
	Groups []time.Duration
	// Hops are the lossless protocol's steps for pods updated in place (nil
	// when none was).
	Hops *hopSummary
	// CafePeakRSS is cafe manager's VmHWM over the release.
	CafePeakRSS int64
	// Invariants are the lossless protocol and the water level as the
	// watch stream of the release shows them.
	Invariants invariants
	// Sequence is the writes to one released pod, from the same stream.
	Sequence podSequence
}

// runner runs scenarios on a cluster.
type runner struct {
	cluster *cluster
	shape   shape
	timeout time.Duration
	// lifetimePeakRSS is the largest VmHWM of cafe manager seen so far.
	lifetimePeakRSS int64
	profiler        profiler
}

// run releases the scenario's workload once in a fresh namespace, which it
// deletes afterwards. An error means the benchmark cannot go on; a release
// that does not finish is reported in the result instead.
func (r *runner) run(ctx context.Context, s scenario, run int) (runResult, error) {
	res := runResult{Scenario: s.Key, Run: run, Pods: int(r.shape.Replicas)}
	ctx, cancel := r.cluster.watchFailures(ctx)
	defer cancel()
	ns := fmt.Sprintf("bench-%s-%d", s.Key, run)
	fmt.Fprintf(r.cluster.out, "[%s run %d] creating %d replicas at %s in namespace %s\n", s.Key, run, r.shape.Replicas, imageV1, ns)
	defer func() {
		// Cleaning up uses a fresh context: the run's may have ended.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		if err := r.tearDown(cleanupCtx, ns); err != nil {
			fmt.Fprintf(r.cluster.out, "[%s run %d] cleaning up: %v\n", s.Key, run, err)
		}
	}()
	if st, ok := s.Workload.(stopper); ok {
		defer st.Stop()
	}
	if err := r.setUp(ctx, s.Workload, ns); err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s run %d: %w", s.Key, run, withCause(ctx, err))
		}
		// The workload could not even be created at v1: a finding for the
		// report (with its status), not a reason to stop the benchmark.
		return res, r.unfinished(ctx, s.Workload, ns, &res, "creating the workload at "+imageV1+": "+err.Error())
	}
	if err := r.release(ctx, s.Workload, ns, &res); err != nil {
		return res, fmt.Errorf("%s run %d: %w", s.Key, run, withCause(ctx, err))
	}
	return res, nil
}

// serviceOwner is a workload that says which Service fronts its pods:
// one without a selector when it writes the endpoints itself.
type serviceOwner interface {
	Service(ns string) *corev1.Service
}

// writesEndpoints: the Service in front of w's pods has no selector, so
// the workload writes its EndpointSlices itself.
func writesEndpoints(w workload, ns string) bool {
	return len(serviceOf(w, ns).Spec.Selector) == 0
}

// serviceCreator is a workload whose own objects include the Service in
// front of its pods (a CafeAppService owns its Service): the benchmark
// does not create it.
type serviceCreator interface{ CreatesService() bool }

func createsService(w workload) bool {
	c, ok := w.(serviceCreator)
	return ok && c.CreatesService()
}

// stopper is a workload that runs something of its own during a run (the
// endpoint-owned workload's publisher), stopped when the run ends.
type stopper interface{ Stop() }

// serviceOf is the Service in front of w's pods: its own or the app's.
func serviceOf(w workload, ns string) *corev1.Service {
	if o, ok := w.(serviceOwner); ok {
		return o.Service(ns)
	}
	return service(ns)
}

// setUp creates the namespace, the Service and the workload at v1, and
// waits until every pod is Ready, listed ready by the EndpointSlices, and
// the workload's controller is done.
func (r *runner) setUp(ctx context.Context, w workload, ns string) error {
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return setUpApp(waitCtx, r.cluster.client, w, ns, int(r.shape.Replicas))
}

// setUpApp creates the namespace, the Service, the extra objects (an
// HTTPRoute, say) and the workload at v1 with n replicas, and waits until
// every pod is Ready, the workload's controller is done and the
// EndpointSlices list every pod.
func setUpApp(ctx context.Context, c client.WithWatch, w workload, ns string, n int, extra ...client.Object) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	objs := extra
	if !createsService(w) {
		objs = append([]client.Object{serviceOf(w, ns)}, extra...)
	}
	for _, obj := range objs {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	if err := w.Create(ctx, c, ns, imageV1); err != nil {
		return err
	}
	if _, _, err := waitPodsSettled(ctx, c, ns, n, imageV1, nil); err != nil {
		return err
	}
	if err := w.WaitDone(ctx, c, ns); err != nil {
		return err
	}
	return waitEndpoints(ctx, c, ns, appName, n)
}

// release changes the image to v2 between two snapshots and records how
// long the pods took to settle on it. A release that does not finish in
// time is recorded with what was seen (counters included), not an error.
func (r *runner) release(ctx context.Context, w workload, ns string, res *runResult) error {
	c := r.cluster.client
	pid := r.cluster.manager.pid()
	if err := r.notePeakRSS(pid); err != nil {
		return err
	}
	if err := resetPeakRSS(pid); err != nil {
		return err
	}
	recording, err := r.recordInvariants(ctx, ns, w.WaterLevel(), writesEndpoints(w, ns))
	if err != nil {
		return err
	}
	defer recording.rec.Stop()
	before, err := r.cluster.takeSnapshot(ctx, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cluster.out, "[%s run %d] releasing %s\n", res.Scenario, res.Run, imageV2)
	start := time.Now()
	waitProfiles := r.profiler.start(ctx, r.cluster, fmt.Sprintf("%s-%d", res.Scenario, res.Run))
	if err := w.SetImage(ctx, c, ns, imageV2); err != nil {
		return err
	}
	if err := r.waitReleased(ctx, w, ns, start, res); err != nil {
		return err
	}
	waitProfiles()
	after, err := r.cluster.takeSnapshot(ctx, true)
	if err != nil {
		return err
	}
	if res.CafePeakRSS, err = peakRSS(pid); err != nil {
		return err
	}
	r.lifetimePeakRSS = max(r.lifetimePeakRSS, res.CafePeakRSS)
	res.Delta = after.since(before)
	res.Invariants, res.Sequence = recording.check(imageV2)
	if res.Completed {
		fmt.Fprintf(r.cluster.out, "[%s run %d] pods settled on %s after %s (controller done after %s), %.2f successful writes per pod; watch stream: %s\n",
			res.Scenario, res.Run, imageV2, res.Wall.Round(time.Millisecond), res.ControllerDone.Round(time.Millisecond), res.Delta.API.OK.total()/float64(res.Pods), res.Invariants.summary())
	}
	return nil
}

// waitReleased waits until the pods are settled on v2 (the wall time), the
// workload's controller reports the release done, and the EndpointSlices
// list every pod ready again.
func (r *runner) waitReleased(ctx context.Context, w workload, ns string, start time.Time, res *runResult) error {
	c := r.cluster.client
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	hops := newHopRecorder(imageV2)
	stopSlices := watchSlicesInto(waitCtx, c, ns, hops)
	settledAt, tally, err := waitPodsSettled(waitCtx, c, ns, res.Pods, imageV2, hops)
	stopSlices()
	if err != nil {
		return r.unfinished(ctx, w, ns, res, fmt.Sprintf("the pods did not settle on %s within %s (last seen: %s)", imageV2, r.timeout, tally))
	}
	res.Wall = settledAt.Sub(start)
	if err := w.WaitDone(waitCtx, c, ns); err != nil {
		return r.unfinished(ctx, w, ns, res, fmt.Sprintf("the pods settled after %s, but %v", res.Wall.Round(time.Millisecond), err))
	}
	res.ControllerDone = time.Since(start)
	if g, ok := w.(groupedRelease); ok {
		if res.Groups, err = g.GroupDurations(ctx, c, ns); err != nil {
			return err
		}
	}
	// The pods went through the groups in the order their gates closed.
	res.Hops = hops.summary((res.Pods + max(len(res.Groups), 1) - 1) / max(len(res.Groups), 1))
	if err := waitEndpoints(waitCtx, c, ns, appName, res.Pods); err != nil {
		return r.unfinished(ctx, w, ns, res, err.Error())
	}
	res.Completed = true
	return nil
}

// unfinished records why a release did not finish, with the workload's
// status; it is an error only when the benchmark itself was stopped.
func (r *runner) unfinished(ctx context.Context, w workload, ns string, res *runResult, what string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	res.Problem = what + "\n" + w.Describe(ctx, r.cluster.client, ns)
	fmt.Fprintf(r.cluster.out, "[%s run %d] RELEASE NOT FINISHED: %s\n", res.Scenario, res.Run, res.Problem)
	return nil
}

// notePeakRSS folds the manager's VmHWM so far into the lifetime peak
// before it is reset.
func (r *runner) notePeakRSS(pid int) error {
	rss, err := peakRSS(pid)
	if err != nil {
		return err
	}
	r.lifetimePeakRSS = max(r.lifetimePeakRSS, rss)
	return nil
}

// stopCluster folds the manager's peak RSS into the lifetime peak and stops
// the cluster, if one runs.
func (r *runner) stopCluster() error {
	if r.cluster == nil {
		return nil
	}
	c := r.cluster
	r.cluster = nil
	defer c.stop()
	return r.notePeakRSS(c.manager.pid())
}

// tearDown deletes the namespace and waits until it and its pods are gone,
// so the next scenario starts on an idle control plane.
func (r *runner) tearDown(ctx context.Context, ns string) error {
	c := r.cluster.client
	err := c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting namespace %s: %w", ns, err)
	}
	return waitNamespaceGone(ctx, c, ns)
}

// withCause adds the reason a context was cancelled (a component exited)
// to an error it caused.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%w (because %w)", err, cause)
	}
	return err
}
