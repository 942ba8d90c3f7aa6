package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
)

// The traffic scenario (issue 13): real HTTP requests through the local
// control plane's gateway (Traefik, Gateway API) to the simulated pods,
// whose containers the pod emulator plays, before and during a release of
// each workload kind. It runs on a control plane of its own, started with
// the gateway and the emulator, so that the release scenarios measure the
// same cluster as before.
const (
	trafficKey = "traffic"
	// trafficCPULimit is the most of a core the gateway may use at the
	// rate the scenario sends: the "under 50% of a core".
	trafficCPULimit = 0.5
	// calibrationStep is how long each calibration rate is sent.
	calibrationStep = 6 * time.Second
	// calibrationMinRate is the lowest rate calibration goes down to.
	calibrationMinRate = 10
	// v2OnlyWait bounds the wait, once the gateway serves only v2 pods, for
	// a second of load answered only by v2.
	v2OnlyWait = 30 * time.Second
	// trafficPoll is how often the gateway's API is read while waiting for
	// it to serve the app's pods (it has no watch).
	trafficPoll = 200 * time.Millisecond
)

// trafficKind is one workload kind released under load.
type trafficKind struct {
	Key, Title string
	Workload   workload
}

// trafficKinds are the kinds the scenario releases, in order: the two
// CafeDeployment modes with the native Deployment between them, as in the
// release scenarios.
func trafficKinds(s shape) []trafficKind {
	return []trafficKind{
		{Key: "inplaceset", Title: "CafeDeployment, InPlaceSet mode", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet}},
		{Key: "deployment", Title: "native Deployment", Workload: deployment{shape: s}},
		{Key: "replicaset", Title: "CafeDeployment, ReplicaSet mode", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeReplicaSet}},
	}
}

// trafficShape is the app of the traffic scenario: replicas over three
// zones, released in groups of a tenth (CafeDeployment) or with a tenth
// unavailable at most (Deployment), as the release scenarios do with 1,000.
func trafficShape(replicas int) shape {
	tenth := int32(max(replicas/10, 1))
	return shape{Replicas: int32(replicas), Zones: []string{"zone-a", "zone-b", "zone-c"}, BatchSize: tenth, MaxUnavailable: tenth}
}

// trafficReport is everything the traffic section of the page says.
type trafficReport struct {
	Started  time.Time
	Duration time.Duration
	Shape    shape
	Nodes    int
	// TargetRate is -traffic-rate; Rate what was sent (lower when the
	// gateway would have used more than trafficCPULimit at the target).
	TargetRate, Rate int
	Baseline         time.Duration
	Calibration      []calibrationStepResult
	Results          []trafficResult
	Traefik          string
	ManagerArgs      []string
}

// calibrationStepResult is one rate tried before the releases.
type calibrationStepResult struct {
	Rate         int
	TraefikCores float64
	Counts       loadgen.Counts
	P99          time.Duration
}

// trafficResult is one release of one kind under load.
type trafficResult struct {
	Kind trafficKind
	Run  int
	Rate int
	// Completed is false when the release, or the gateway's catching up
	// with it, did not finish in time; Problem says what was seen.
	Completed bool
	Problem   string
	// Wall is from the image change until the pods were settled on v2 (as
	// in the release scenarios); ControllerDone until the workload's status
	// said so; GatewayDone until the gateway's API listed exactly the v2
	// pods.
	Wall, ControllerDone, GatewayDone time.Duration
	// loadOutcome is what the load saw, split at the image change.
	loadOutcome
	// TraefikCores is the gateway's CPU over the whole load run, in cores;
	// TraefikCoresDuring over the release part. EmulatorCores is the pod
	// emulator's over the whole run.
	TraefikCores, TraefikCoresDuring, EmulatorCores float64
	// ClusterCores is what the control plane (Traefik and the emulator
	// aside), cafe manager and this process (its watches and the load
	// generator) used during the load run; OtherCores what the rest of the
	// machine used (other work on a shared machine). Both in cores.
	ClusterCores, OtherCores float64
}

// unservedSecond is a second of load with a failure or no 2xx answer.
// loadOutcome is what the load under one release saw.
type loadOutcome struct {
	// Before covers the seconds of load before the change, During those
	// from it to the end of the load; Total the whole run.
	Before, During, Total loadgen.Summary
	// Unserved counts the seconds with a failure or no 2xx answer;
	// UnservedSeconds are the first of them.
	Unserved        int
	UnservedSeconds []unservedSecond
	// Errors are the load's distinct failure messages.
	Errors []loadgen.ErrorSample
	MaxLag time.Duration
}

// record fills o from the load's report; change is when the release
// began.
func (o *loadOutcome) record(rep *loadgen.Report, change time.Time) {
	o.Before = rep.Window(rep.Start, change)
	o.During = rep.Window(change, rep.Start.Add(rep.Duration+time.Second))
	o.Total, o.Errors, o.MaxLag = rep.Total, rep.Errors, rep.MaxLag
	unserved := rep.UnservedSeconds()
	o.Unserved = len(unserved)
	for _, sec := range unserved[:min(len(unserved), shownUnserved)] {
		at := rep.Start.Add(time.Duration(sec.Index) * time.Second).Sub(change)
		o.UnservedSeconds = append(o.UnservedSeconds, unservedSecond{FromRelease: at, Counts: sec.Counts, Errors: sec.Errors})
	}
}

// unservedRelease names a release's first seconds of load not fully
// served, for the pages.
type unservedRelease struct {
	Title   string
	Run     int
	Seconds []unservedSecond
}

// writeUnservedSeconds lists, per release, the first seconds of load that
// had a failure: when (from change) and what.
func writeUnservedSeconds(b *strings.Builder, change string, releases []unservedRelease) {
	if !slices.ContainsFunc(releases, func(r unservedRelease) bool { return len(r.Seconds) > 0 }) {
		return
	}
	fmt.Fprintf(b, "Seconds of load not fully served (the first %d of each release; time from %s to the second's start):\n\n", shownUnserved, change)
	for _, r := range releases {
		for _, sec := range r.Seconds {
			fmt.Fprintf(b, "- %s, run %d, %+.1f s: %s", r.Title, r.Run, sec.FromRelease.Seconds(), loadgen.FormatCounts(sec.Counts))
			if len(sec.Errors) > 0 {
				fmt.Fprintf(b, " (%s)", strings.Join(sec.Errors, "; "))
			}
			fmt.Fprintln(b)
		}
	}
	fmt.Fprintln(b)
}

type unservedSecond struct {
	// FromRelease is when the second started, from the image change.
	FromRelease time.Duration
	loadgen.Counts
	Errors []string
}

// shownUnserved is how many unserved seconds per release the page lists.
const shownUnserved = 8

// nextCalibrationRate decides, after rate made the gateway use cores, what
// to do: accept it (at or under limit), or try a lower rate aimed at 90% of
// the limit, assuming the gateway's CPU grows in proportion to the rate,
// rounded down to a multiple of 10, and lower than rate. ok is false when
// the rate is already the minimum: nothing lower is worth trying.
func nextCalibrationRate(rate int, cores, limit float64) (next int, accept, ok bool) {
	if cores <= limit {
		return rate, true, true
	}
	if rate <= calibrationMinRate {
		return rate, false, false
	}
	next = int(float64(rate)*0.9*limit/cores) / 10 * 10
	if next >= rate {
		next = rate - 10
	}
	return max(next, calibrationMinRate), false, true
}

// benchmarkTraffic starts a control plane with the gateway and the pod
// emulator, and releases each kind under load o.Runs times (interleaved).
func benchmarkTraffic(ctx context.Context, o options, repoRoot, stateDir string) (*trafficReport, error) {
	started := time.Now()
	sh := trafficShape(o.TrafficReplicas)
	managerArgs := strings.Fields(o.ManagerArgs)
	c, err := startCluster(ctx, clusterOptions{RepoRoot: repoRoot, StateDir: stateDir, Nodes: o.Nodes, Zones: sh.Zones, ManagerArgs: managerArgs, Out: os.Stdout, Traffic: true})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	traefik, err := gateway.NewTraefik(c.cp.GatewayAdminURL())
	if err != nil {
		return nil, err
	}
	r := &trafficRunner{cluster: c, shape: sh, timeout: o.Timeout, baseline: o.TrafficBaseline, traefik: traefik}
	rep := &trafficReport{Shape: sh, Nodes: o.Nodes, TargetRate: o.TrafficRate, Baseline: o.TrafficBaseline,
		Traefik:     pinnedVersion(repoRoot, "traefik", "github.com/traefik/traefik/v3"),
		ManagerArgs: append(managerArgs, "--gateway-api-url=http://127.0.0.1:<traefik API port>")}
	// The first kind, once served, calibrates the rate; every release then
	// runs at it.
	rate := func(ctx context.Context, host string) (int, error) {
		if rep.Rate == 0 {
			var err error
			rep.Rate, err = r.calibrate(ctx, host, o.TrafficRate, &rep.Calibration)
			return rep.Rate, err
		}
		return rep.Rate, nil
	}
	for run := 1; run <= o.Runs; run++ {
		for _, k := range trafficKinds(sh) {
			res, err := r.runKind(ctx, k, run, rate)
			if err != nil {
				return nil, err
			}
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Started, rep.Duration = started, time.Since(started)
	return rep, nil
}

// trafficRunner releases the kinds on the traffic control plane.
type trafficRunner struct {
	cluster  *cluster
	shape    shape
	timeout  time.Duration
	baseline time.Duration
	traefik  *gateway.Traefik
}

// runKind creates the app of one kind at v1 behind the gateway, waits until
// the gateway serves all its pods, picks the rate (rate: calibration for the
// first kind), sends load for the baseline, releases v2 and keeps the load
// on until the gateway serves only v2 pods and a second was answered only
// by v2. The namespace is deleted afterwards. An error means the benchmark
// cannot go on; a release that does not finish is reported in the result.
func (r *trafficRunner) runKind(ctx context.Context, k trafficKind, run int, rate func(ctx context.Context, host string) (int, error)) (trafficResult, error) {
	res := trafficResult{Kind: k, Run: run}
	ctx, cancel := r.cluster.watchFailures(ctx)
	defer cancel()
	out := r.cluster.out
	tag := fmt.Sprintf("[%s/%s run %d]", trafficKey, k.Key, run)
	ns := fmt.Sprintf("bench-%s-%s-%d", trafficKey, k.Key, run)
	host := appName + "." + ns + ".example"
	fmt.Fprintf(out, "%s creating %d replicas at %s in namespace %s behind the gateway (host %s)\n", tag, r.shape.Replicas, imageV1, ns, host)
	defer func() {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		rn := &runner{cluster: r.cluster}
		if err := rn.tearDown(cleanupCtx, ns); err != nil {
			fmt.Fprintf(out, "%s cleaning up: %v\n", tag, err)
		}
	}()
	if err := r.setUp(ctx, k.Workload, ns, host); err != nil {
		return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
	}
	var err error
	if res.Rate, err = rate(ctx, host); err != nil {
		return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
	}
	if err := r.releaseUnderLoad(ctx, k.Workload, ns, host, tag, &res); err != nil {
		return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
	}
	return res, nil
}

// setUp creates the namespace, the Service, the HTTPRoute and the workload
// at v1, and waits until every pod is Ready, the workload's controller is
// done, the EndpointSlices list every pod and the gateway serves them all.
func (r *trafficRunner) setUp(ctx context.Context, w workload, ns, host string) error {
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := setUpApp(waitCtx, r.cluster.client, w, ns, int(r.shape.Replicas), httpRoute(ns, host)); err != nil {
		return err
	}
	return r.waitServed(waitCtx, ns, imageV1)
}

// httpRoute sends the requests for host through the control plane's Gateway
// to the app's Service.
func httpRoute(ns, host string) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Namespace:   ptr.To(gatewayv1.Namespace(controlplane.GatewayNamespace)),
				Name:        gatewayv1.ObjectName(controlplane.GatewayName),
				SectionName: ptr.To(gatewayv1.SectionName(controlplane.GatewayListenerName)),
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(appName), Port: ptr.To(gatewayv1.PortNumber(servicePort))},
			}}}}},
		},
	}
}

// servicePort is the app's Service port and its pods' container port (the
// pod emulator answers on the ports the container declares).
const servicePort = 80

// waitServed polls the gateway's API (it has no watch) until its servers
// include every pod of the app, all Ready and running image, and no other
// pod of the app. Every server must lie in the pod network (the network
// rule: the gateway is never handed an address elsewhere).
func (r *trafficRunner) waitServed(ctx context.Context, ns, image string) error {
	network := r.cluster.cp.PodNetwork()
	if network == nil {
		return errors.New("the control plane runs without a pod network")
	}
	n := int(r.shape.Replicas)
	tick := time.NewTicker(trafficPoll)
	defer tick.Stop()
	last := "nothing read yet"
	for {
		pods := &corev1.PodList{}
		if err := r.cluster.client.List(ctx, pods, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("listing the app's pods: %w", err)
		}
		want, app := map[netip.AddrPort]bool{}, map[netip.Addr]bool{}
		for i := range pods.Items {
			p := &pods.Items[i]
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil {
				continue
			}
			app[ip] = true
			if p.DeletionTimestamp == nil && podReady(p) && runsImage(p, image) {
				want[netip.AddrPortFrom(ip, servicePort)] = true
			}
		}
		servers, err := r.traefik.Backends(ctx)
		if err != nil {
			return fmt.Errorf("asking the gateway for its servers: %w", err)
		}
		served, others := 0, 0
		for _, s := range servers {
			if !network.CIDR.Contains(s.Addr()) {
				return fmt.Errorf("the gateway was handed %s, outside the pod network %s", s, network.CIDR)
			}
			switch {
			case want[s]:
				served++
			case app[s.Addr()]:
				others++
			}
		}
		if len(want) == n && served == n && others == 0 {
			return nil
		}
		last = fmt.Sprintf("%d of the app's pods run %s and are Ready; the gateway serves %d of them and %d other pods of the app", len(want), image, served, others)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the gateway to serve the app at %s: %s: %w", image, last, ctx.Err())
		case <-tick.C:
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// busy reads the CPU time of every process of the benchmark (the control
// plane's children, cafe manager, this process) and of the whole machine.
func (r *trafficRunner) busy() (ours, machine float64, err error) {
	pids := append(r.cluster.cp.PIDs(), r.cluster.manager.pid(), os.Getpid())
	for _, pid := range pids {
		s, err := r.cluster.clock.cpuSeconds(pid)
		if err != nil {
			return 0, 0, err
		}
		ours += s
	}
	machine, err = r.cluster.clock.machineBusySeconds()
	return ours, machine, err
}

// cores reads the CPU time of the gateway and the pod emulator.
func (r *trafficRunner) cores() (traefik, emulator float64, err error) {
	read := func(component string) (float64, error) {
		pid, err := r.cluster.cp.PID(component)
		if err != nil {
			return 0, err
		}
		return r.cluster.clock.cpuSeconds(pid)
	}
	if traefik, err = read(controlplane.TraefikComponent); err != nil {
		return 0, 0, err
	}
	emulator, err = read(controlplane.PodEmulatorComponent)
	return traefik, emulator, err
}

// calibrate sends rate requests/s for calibrationStep and reads the
// gateway's CPU; while it is over trafficCPULimit it tries lower rates
// (nextCalibrationRate). It returns the rate to use and records each step.
func (r *trafficRunner) calibrate(ctx context.Context, host string, rate int, steps *[]calibrationStepResult) (int, error) {
	for {
		t0, _, err := r.cores()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		rep, err := loadgen.Run(ctx, loadgen.Config{URL: r.cluster.cp.GatewayURL() + "/", Host: host, Rate: rate, Duration: calibrationStep})
		if err != nil {
			return 0, fmt.Errorf("calibrating at %d requests/s: %w", rate, err)
		}
		t1, _, err := r.cores()
		if err != nil {
			return 0, err
		}
		step := calibrationStepResult{Rate: rate, TraefikCores: (t1 - t0) / time.Since(start).Seconds(), Counts: rep.Total.Counts, P99: rep.Total.Latency.P99}
		*steps = append(*steps, step)
		fmt.Fprintf(r.cluster.out, "[%s] calibration: %d requests/s for %s: the gateway used %.2f cores (limit %.2f); %s; p99 %s\n",
			trafficKey, rate, calibrationStep, step.TraefikCores, trafficCPULimit, loadgen.FormatCounts(step.Counts), step.P99)
		next, accept, ok := nextCalibrationRate(rate, step.TraefikCores, trafficCPULimit)
		if accept || !ok {
			return rate, nil
		}
		rate = next
	}
}

// load is a run of the load generator, from startLoad until stop.
type load struct {
	start   time.Time
	cancel  context.CancelFunc
	done    chan struct{}
	seconds chan loadgen.Second
	report  *loadgen.Report
	err     error
}

func (r *trafficRunner) startLoad(host string, rate int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{start: time.Now(), cancel: cancel, done: make(chan struct{}), seconds: make(chan loadgen.Second, 8192)}
	go func() {
		defer close(l.done)
		l.report, l.err = loadgen.Run(ctx, loadgen.Config{
			URL: r.cluster.cp.GatewayURL() + "/", Host: host, Rate: rate,
			OnSecond: func(s loadgen.Second) {
				select {
				case l.seconds <- s:
				default:
				}
			},
		})
	}()
	return l
}

func (l *load) stop() (*loadgen.Report, error) {
	l.cancel()
	<-l.done
	return l.report, l.err
}

// waitV2Only waits for a second of load, starting at or after since,
// served (no failure) and answered only by v2; false after v2OnlyWait.
func (l *load) waitV2Only(ctx context.Context, since time.Time) bool {
	first := secondsAfter(since.Sub(l.start))
	timeout := time.NewTimer(v2OnlyWait)
	defer timeout.Stop()
	for {
		select {
		case s := <-l.seconds:
			if s.Index >= first && s.Served() && s.Versions[versionOf(imageV2)] == s.OK {
				return true
			}
		case <-l.done:
			return false
		case <-timeout.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// secondsAfter is the index of the first whole second of the load starting
// at or after d.
func secondsAfter(d time.Duration) int {
	s := int(d / time.Second)
	if d > time.Duration(s)*time.Second {
		s++
	}
	return s
}

// versionOf is an image's tag, which the pod emulator answers as the
// version.
func versionOf(image string) string {
	_, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	return tag
}

// releaseUnderLoad runs the load: the baseline, then the release to v2,
// until the gateway serves only v2 pods and one second was answered only by
// v2. A release that does not finish is recorded in res.
func (r *trafficRunner) releaseUnderLoad(ctx context.Context, w workload, ns, host, tag string, res *trafficResult) error {
	c := r.cluster.client
	fmt.Fprintf(r.cluster.out, "%s load at %d requests/s through the gateway: %s before the release\n", tag, res.Rate, r.baseline)
	ours0, busy0, err := r.busy()
	if err != nil {
		return err
	}
	traefik0, emulator0, err := r.cores()
	if err != nil {
		return err
	}
	l := r.startLoad(host, res.Rate)
	defer l.stop()
	select {
	case <-time.After(r.baseline):
	case <-ctx.Done():
		return ctx.Err()
	}
	traefikRelease, _, err := r.cores()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cluster.out, "%s releasing %s\n", tag, imageV2)
	start := time.Now()
	if err := w.SetImage(ctx, c, ns, imageV2); err != nil {
		return err
	}
	problem := r.waitReleased(ctx, w, ns, start, res)
	if problem == "" {
		gatewayDone := start.Add(res.GatewayDone)
		if !l.waitV2Only(ctx, gatewayDone) {
			problem = fmt.Sprintf("no second of load after the gateway served only %s pods was answered by %s alone within %s", imageV2, versionOf(imageV2), v2OnlyWait)
		}
	}
	rep, loadErr := l.stop()
	end := time.Now()
	if rep == nil {
		return fmt.Errorf("the load generator: %w", loadErr)
	}
	traefik1, emulator1, err := r.cores()
	if err != nil {
		return err
	}
	ours1, busy1, err := r.busy()
	if err != nil {
		return err
	}
	window := end.Sub(l.start).Seconds()
	res.TraefikCores = (traefik1 - traefik0) / window
	res.TraefikCoresDuring = (traefik1 - traefikRelease) / end.Sub(start).Seconds()
	res.EmulatorCores = (emulator1 - emulator0) / window
	res.ClusterCores = max((ours1-ours0)-(traefik1-traefik0)-(emulator1-emulator0), 0) / window
	res.OtherCores = max((busy1-busy0)-(ours1-ours0), 0) / window
	res.record(rep, start)
	if problem != "" {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", problem, ctx.Err())
		}
		res.Problem = problem + "\n" + w.Describe(ctx, c, ns)
		fmt.Fprintf(r.cluster.out, "%s RELEASE NOT FINISHED: %s\n", tag, res.Problem)
		return nil
	}
	res.Completed = true
	fmt.Fprintf(r.cluster.out, "%s pods settled on %s after %s, the gateway served only them after %s; load: %s; p99 %s before, %s during; gateway %.2f cores\n",
		tag, imageV2, res.Wall.Round(time.Millisecond), res.GatewayDone.Round(time.Millisecond), loadgen.FormatCounts(res.Total.Counts),
		res.Before.Latency.P99, res.During.Latency.P99, res.TraefikCores)
	return nil
}

// waitReleased waits until the pods are settled on v2 (the wall time, as in
// the release scenarios), the workload's controller reports the release
// done, the EndpointSlices list every pod ready and the gateway serves only
// the v2 pods. It returns what went wrong, or "".
func (r *trafficRunner) waitReleased(ctx context.Context, w workload, ns string, start time.Time, res *trafficResult) string {
	c := r.cluster.client
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n := int(r.shape.Replicas)
	settledAt, tally, err := waitPodsSettled(waitCtx, c, ns, n, imageV2, nil)
	if err != nil {
		return fmt.Sprintf("the pods did not settle on %s within %s (last seen: %s)", imageV2, r.timeout, tally)
	}
	res.Wall = settledAt.Sub(start)
	if err := w.WaitDone(waitCtx, c, ns); err != nil {
		return fmt.Sprintf("the pods settled after %s, but %v", res.Wall.Round(time.Millisecond), err)
	}
	res.ControllerDone = time.Since(start)
	if err := waitEndpoints(waitCtx, c, ns, appName, n); err != nil {
		return err.Error()
	}
	if err := r.waitServed(waitCtx, ns, imageV2); err != nil {
		return err.Error()
	}
	res.GatewayDone = time.Since(start)
	return ""
}
