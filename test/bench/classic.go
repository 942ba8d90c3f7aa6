package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/loadgen"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
)

// The classic scenario (issue 15): 60 classic instances of 10 apps on 6
// classic hosts, every app released v1 → v2 at once under load through the
// gateway, on a control plane of its own (pod network, gateway, 6 hosts
// each in a network namespace of its own running `cafe agent`, the demo
// app's packages on an artifact store); then, on the same control plane,
// the same shape as pods (InPlaceSets) for comparison.
const (
	classicKey = "classic"
	// classicHostCount hosts and classicNodes nodes, both round-robin over
	// the zones: 2 per zone.
	classicHostCount = 6
	classicNodes     = 6
	// classicAppCount apps of classicPerUnit replicas in each of the 3
	// zones: 60 instances, one of each app per host (a ClassicSet places at
	// most one instance of a set on a host), 10 per host (a host's default
	// capacity).
	classicAppCount = 10
	classicPerUnit  = 2
	// classicBatch is the release group size: 2 groups, one instance per
	// zone each.
	classicBatch = 3
	// classicBasePort is app 0's port; app i serves on classicBasePort+i
	// (the instances of all apps share their host's address).
	classicBasePort = 8080
	// classicRouteHost is the one HTTPRoute's host, whose backendRefs are
	// the 10 apps' Services.
	classicRouteHost = "classic.bench.example"
)

var classicZones = []string{"zone-a", "zone-b", "zone-c"}

// classicKind is one way of running the 10 apps.
type classicKind struct {
	Key, Title string
	// VMs: every unit is a classic unit (spec.classic); else InPlaceSet
	// pods.
	VMs bool
}

func classicKinds() []classicKind {
	return []classicKind{
		{Key: "vms", Title: fmt.Sprintf("classic instances on %d hosts", classicHostCount), VMs: true},
		{Key: "pods", Title: fmt.Sprintf("InPlaceSet pods on %d nodes", classicNodes)},
	}
}

// classicReplicas is each app's replicas; classicTotal all apps'.
const (
	classicReplicas = classicPerUnit * 3
	classicTotal    = classicAppCount * classicReplicas
)

// classicShape is each app's CafeDeployment's shape.
func classicShape() shape {
	return shape{Replicas: classicReplicas, Zones: classicZones, BatchSize: classicBatch, MaxUnavailable: classicBatch}
}

func classicWorkload() cafeDeployment {
	return cafeDeployment{shape: classicShape(), mode: cafev1alpha1.PodSetTypeInPlaceSet}
}

func classicAppName(i int) string           { return fmt.Sprintf("app-%d", i) }
func classicPort(i int) int32               { return classicBasePort + int32(i) }
func classicLabels(i int) map[string]string { return map[string]string{appLabel: classicAppName(i)} }

// classicContainers is app i's container at image, declaring the port the
// pod emulator answers on.
func classicContainers(i int, image string) []corev1.Container {
	return []corev1.Container{{Name: containerName, Image: image, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: classicPort(i)}}}}
}

// classicService selects app i's pods or instances; port 80 to the app's
// own port.
func classicService(ns string, i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: classicAppName(i)},
		Spec: corev1.ServiceSpec{
			Selector: classicLabels(i),
			Ports:    []corev1.ServicePort{{Name: "http", Port: servicePort, TargetPort: intstr.FromInt32(classicPort(i))}},
		},
	}
}

// classicRoute sends classicRouteHost's requests through the control
// plane's Gateway to the 10 apps' Services alike.
func classicRoute(ns string) *gatewayv1.HTTPRoute {
	var backends []gatewayv1.HTTPBackendRef
	for i := range classicAppCount {
		backends = append(backends, gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(classicAppName(i)), Port: ptr.To(gatewayv1.PortNumber(servicePort))},
		}})
	}
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "classic"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Namespace:   ptr.To(gatewayv1.Namespace(controlplane.GatewayNamespace)),
				Name:        gatewayv1.ObjectName(controlplane.GatewayName),
				SectionName: ptr.To(gatewayv1.SectionName(controlplane.GatewayListenerName)),
			}}},
			Hostnames: []gatewayv1.Hostname{classicRouteHost},
			Rules:     []gatewayv1.HTTPRouteRule{{BackendRefs: backends}},
		},
	}
}

// classicDeployment is app i's CafeDeployment: 6 replicas, 2 per zone,
// released in 2 groups of one per zone; with artifact, every zone is a
// classic unit running it, else InPlaceSet pods.
func classicDeployment(ns string, i int, artifact *cafev1alpha1.ClassicArtifact) *cafev1alpha1.CafeDeployment {
	cd := classicWorkload().object(ns, imageV1)
	cd.Name = classicAppName(i)
	cd.Spec.Selector = &metav1.LabelSelector{MatchLabels: classicLabels(i)}
	cd.Spec.Template.Labels = classicLabels(i)
	cd.Spec.Template.Spec.Containers = classicContainers(i, imageV1)
	cd.Spec.Topology.UnitReplicas = map[string]intstr.IntOrString{}
	for _, z := range classicZones {
		cd.Spec.Topology.UnitReplicas[z] = intstr.FromInt32(classicPerUnit)
	}
	if artifact != nil {
		cd.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: slices.Clone(classicZones), Artifact: *artifact}
	}
	return cd
}

// classicReport is everything the classic section of the page says.
type classicReport struct {
	Started  time.Time
	Duration time.Duration
	Nodes    int
	Hosts    []classicHostInfo
	// TargetRate is -classic-rate; Rate what was sent (lower when the
	// gateway would have used more than trafficCPULimit at the target).
	TargetRate, Rate int
	Baseline         time.Duration
	Calibration      []calibrationStepResult
	Results          []classicResult
	Traefik          string
	ManagerArgs      []string
	// Packages are the demo app's v1 and v2 packages (file, SHA-256).
	Packages []string
}

// classicHostInfo is one classic host as the page lists it.
type classicHostInfo struct{ Name, Zone, Address, Namespace string }

// classicResult is one release of the 10 apps under load.
type classicResult struct {
	Kind classicKind
	Run  int
	Rate int
	// Completed is false when the release, or the gateway's catching up
	// with it, did not finish in time; Problem says what was seen.
	Completed bool
	Problem   string
	// Settled is from the first change until all 60 instances (pods) run
	// v2 and are Ready with their traffic gate open; StatusDone until every
	// CafeDeployment reported its release Completed; Wall is the later of
	// the two; GatewayDone until the gateway listed all 60 again.
	Settled, StatusDone, Wall, GatewayDone time.Duration
	// loadOutcome is what the load saw, split at the first change.
	loadOutcome
	// Window is the release's span the CPU is measured over: from the
	// first change until the gateway listed all 60 on v2 (until the
	// benchmark gave up, for a release that did not finish).
	Window time.Duration
	// CPU is each component's CPU time (s) over Window.
	CPU map[string]float64
	// OtherCores is what the rest of the machine used over Window, in
	// cores.
	OtherCores float64
	// Hosts are the classic hosts' agents and instances over Window (VMs
	// only).
	Hosts []hostUsage
	// EmulatorPeakRSS is the pod emulator's VmHWM over Window (pods only).
	EmulatorPeakRSS int64
}

// benchmarkClassic starts a control plane with the traffic components and
// the classic hosts, and releases each kind under load o.Runs times
// (interleaved).
func benchmarkClassic(ctx context.Context, o options, repoRoot, stateDir string) (_ *classicReport, err error) {
	started := time.Now()
	managerArgs := strings.Fields(o.ManagerArgs)
	c, err := startCluster(ctx, clusterOptions{RepoRoot: repoRoot, StateDir: stateDir, Nodes: classicNodes, Zones: classicZones, ManagerArgs: managerArgs, Out: os.Stdout, Traffic: true})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.out, "[%s] starting %d classic hosts\n", classicKey, classicHostCount)
	fleet, err := startClassicFleet(ctx, c, classicHostCount, classicZones)
	defer func() {
		c.stop()
		fleet.stop(func(format string, args ...any) { fmt.Fprintf(c.out, format, args...) })
	}()
	if err != nil {
		return nil, fmt.Errorf("starting the classic hosts: %w", err)
	}
	traefik, err := gateway.NewTraefik(c.cp.GatewayAdminURL())
	if err != nil {
		return nil, err
	}
	r := &classicRunner{cluster: c, fleet: fleet, timeout: o.Timeout, baseline: o.ClassicBaseline, traefik: traefik,
		load: &trafficRunner{cluster: c, timeout: o.Timeout, traefik: traefik}}
	rep := &classicReport{Nodes: classicNodes, TargetRate: o.ClassicRate, Baseline: o.ClassicBaseline,
		Traefik:     pinnedVersion(repoRoot, "traefik", "github.com/traefik/traefik/v3"),
		ManagerArgs: append(managerArgs, "--gateway-api-url=http://127.0.0.1:<traefik API port>")}
	for _, h := range fleet.Hosts {
		rep.Hosts = append(rep.Hosts, classicHostInfo{Name: h.Name, Zone: h.Zone, Address: h.Address, Namespace: h.Network.Namespace})
	}
	for _, p := range fleet.Demo.Packages {
		if p.Version == "v1" || p.Version == "v2" {
			rep.Packages = append(rep.Packages, fmt.Sprintf("`%s` (SHA-256 %s…)", p.File, p.SHA256[:12]))
		}
	}
	// The first kind, once served, calibrates the rate; every release then
	// runs at it.
	rate := func(ctx context.Context) (int, error) {
		if rep.Rate == 0 {
			var err error
			rep.Rate, err = r.load.calibrate(ctx, classicRouteHost, o.ClassicRate, &rep.Calibration)
			return rep.Rate, err
		}
		return rep.Rate, nil
	}
	for run := 1; run <= o.Runs; run++ {
		for _, k := range classicKinds() {
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

// classicRunner releases the kinds on the classic control plane.
type classicRunner struct {
	cluster  *cluster
	fleet    *classicFleet
	timeout  time.Duration
	baseline time.Duration
	traefik  *gateway.Traefik
	// load runs the load generator and the rate's calibration as the
	// traffic scenario does.
	load *trafficRunner
}

// classicTarget is what the apps run at one version: the pods' image, the
// instances' package.
type classicTarget struct {
	Version, Image string
	Artifact       *cafev1alpha1.ClassicArtifact
}

func (r *classicRunner) target(version string) (classicTarget, error) {
	image := imageV1
	if version == versionOf(imageV2) {
		image = imageV2
	}
	a := r.fleet.Demo.Artifact(version, classicBasePort)
	if a == nil {
		return classicTarget{}, fmt.Errorf("the artifact store has no package of the demo app's %s", version)
	}
	return classicTarget{Version: version, Image: image, Artifact: a}, nil
}

// artifactFor is the target's package as app i runs it (on its port).
func (t classicTarget) artifactFor(i int) *cafev1alpha1.ClassicArtifact {
	a := t.Artifact.DeepCopy()
	a.Port = classicPort(i)
	return a
}

// runKind creates the 10 apps of one kind at v1 behind the route, waits
// until the gateway serves all 60 of them, picks the rate (calibration for
// the first kind), sends load for the baseline, releases every app to v2 at
// once and keeps the load on until the gateway serves all 60 again and a
// second was answered by v2 alone. The namespace is deleted afterwards. An
// error means the benchmark cannot go on; a release that does not finish is
// reported in the result.
func (r *classicRunner) runKind(ctx context.Context, k classicKind, run int, rate func(context.Context) (int, error)) (classicResult, error) {
	res := classicResult{Kind: k, Run: run}
	ctx, cancel := r.cluster.watchFailures(ctx)
	defer cancel()
	out := r.cluster.out
	tag := fmt.Sprintf("[%s/%s run %d]", classicKey, k.Key, run)
	ns := fmt.Sprintf("bench-%s-%s-%d", classicKey, k.Key, run)
	fmt.Fprintf(out, "%s creating %d apps of %d replicas (%s) at v1 in namespace %s behind the gateway (host %s)\n", tag, classicAppCount, classicReplicas, k.Title, ns, classicRouteHost)
	defer func() {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		rn := &runner{cluster: r.cluster}
		if err := rn.tearDown(cleanupCtx, ns); err != nil {
			fmt.Fprintf(out, "%s cleaning up: %v\n", tag, err)
		}
	}()
	v1, err := r.target("v1")
	if err != nil {
		return res, err
	}
	if err := r.setUp(ctx, k, ns, v1); err != nil {
		return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
	}
	if res.Rate, err = rate(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
	}
	if err := r.releaseUnderLoad(ctx, k, ns, tag, &res); err != nil {
		return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
	}
	return res, nil
}

// setUp creates the namespace, the Services, the route and the apps at
// v1, and waits until every instance (pod) runs it, every app's release is
// Completed and the gateway serves all 60.
func (r *classicRunner) setUp(ctx context.Context, k classicKind, ns string, v1 classicTarget) error {
	c := r.cluster.client
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}}
	for i := range classicAppCount {
		objs = append(objs, classicService(ns, i))
	}
	objs = append(objs, classicRoute(ns))
	for i := range classicAppCount {
		var artifact *cafev1alpha1.ClassicArtifact
		if k.VMs {
			artifact = v1.artifactFor(i)
		}
		objs = append(objs, classicDeployment(ns, i, artifact))
	}
	for _, obj := range objs {
		if err := c.Create(waitCtx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	if _, err := r.waitSettled(waitCtx, k, ns, v1); err != nil {
		return err
	}
	if _, err := r.waitDeploymentsDone(waitCtx, ns); err != nil {
		return err
	}
	return r.waitServed(waitCtx, k, ns, v1)
}

// release changes every app to v2 at once (one write per app, all sent
// together): the instances' package, or the pods' image.
func (r *classicRunner) release(ctx context.Context, k classicKind, ns string, v2 classicTarget) error {
	var wg sync.WaitGroup
	errs := make([]error, classicAppCount)
	for i := range classicAppCount {
		wg.Go(func() {
			spec := map[string]any{"template": map[string]any{"spec": map[string]any{"containers": classicContainers(i, v2.Image)}}}
			if k.VMs {
				spec = map[string]any{"classic": map[string]any{"artifact": v2.artifactFor(i)}}
			}
			patch, err := json.Marshal(map[string]any{"spec": spec})
			if err != nil {
				errs[i] = err
				return
			}
			cd := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: classicAppName(i)}}
			if err := r.cluster.client.Patch(ctx, cd, client.RawPatch(types.MergePatchType, patch)); err != nil {
				errs[i] = fmt.Errorf("releasing %s to %s: %w", cd.Name, v2.Version, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// releaseUnderLoad runs the load: the baseline, then the release of every
// app to v2, until the gateway serves all 60 again and one second was
// answered only by v2. A release that does not finish is recorded in res.
func (r *classicRunner) releaseUnderLoad(ctx context.Context, k classicKind, ns, tag string, res *classicResult) error {
	out := r.cluster.out
	v2, err := r.target(versionOf(imageV2))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s load at %d requests/s through the gateway: %s before the release\n", tag, res.Rate, r.baseline)
	l := r.load.startLoad(classicRouteHost, res.Rate)
	defer l.stop()
	select {
	case <-time.After(r.baseline):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := r.resetPeaks(k); err != nil {
		return err
	}
	before, err := sampleProcs(r.cluster, r.fleet.Hosts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s releasing all %d apps to %s at once\n", tag, classicAppCount, v2.Version)
	start := time.Now()
	if err := r.release(ctx, k, ns, v2); err != nil {
		return err
	}
	problem := r.waitReleased(ctx, k, ns, start, v2, res)
	after, err := sampleProcs(r.cluster, r.fleet.Hosts)
	if err != nil {
		return err
	}
	if err := r.notePeaks(k, before, after, res); err != nil {
		return err
	}
	if problem == "" && !l.waitV2Only(ctx, start.Add(res.GatewayDone)) {
		problem = fmt.Sprintf("no second of load after the gateway served all %d on %s was answered by %s alone within %s", classicTotal, v2.Version, v2.Version, v2OnlyWait)
	}
	rep, loadErr := l.stop()
	if rep == nil {
		return fmt.Errorf("the load generator: %w", loadErr)
	}
	res.record(rep, start)
	if problem != "" {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", problem, ctx.Err())
		}
		res.Problem = problem + "\n" + r.describe(ctx, ns)
		fmt.Fprintf(out, "%s RELEASE NOT FINISHED: %s\n", tag, res.Problem)
		return nil
	}
	res.Completed = true
	fmt.Fprintf(out, "%s every app released: all %d on %s after %s, every release Completed after %s, the gateway served all of them after %s; load: %s; p99 %s before, %s during\n",
		tag, classicTotal, v2.Version, res.Settled.Round(time.Millisecond), res.StatusDone.Round(time.Millisecond), res.GatewayDone.Round(time.Millisecond),
		loadgen.FormatCounts(res.Total.Counts), res.Before.Latency.P99, res.During.Latency.P99)
	return nil
}

// resetPeaks resets the peak RSS of what runs the app's processes: the
// agents (VMs) or the pod emulator (pods).
func (r *classicRunner) resetPeaks(k classicKind) error {
	for _, comp := range r.peakComponents(k) {
		pid, err := r.cluster.cp.PID(comp)
		if err != nil {
			return err
		}
		if err := resetPeakRSS(pid); err != nil {
			return err
		}
	}
	return nil
}

func (r *classicRunner) peakComponents(k classicKind) []string {
	if !k.VMs {
		return []string{controlplane.PodEmulatorComponent}
	}
	var out []string
	for _, h := range r.fleet.Hosts {
		out = append(out, agentName(h.Name))
	}
	return out
}

// notePeaks records the release's CPU, the other load and the peaks.
func (r *classicRunner) notePeaks(k classicKind, before, after procSample, res *classicResult) error {
	window := after.At.Sub(before.At)
	res.Window = window
	res.CPU = cpuDelta(before, after)
	res.OtherCores = max((after.Machine-before.Machine)-(after.Ours-before.Ours), 0) / window.Seconds()
	peaks := map[string]int64{}
	for _, comp := range r.peakComponents(k) {
		pid, err := r.cluster.cp.PID(comp)
		if err != nil {
			return err
		}
		rss, err := peakRSS(pid)
		if err != nil {
			return err
		}
		peaks[comp] = rss
	}
	if !k.VMs {
		res.EmulatorPeakRSS = peaks[controlplane.PodEmulatorComponent]
		return nil
	}
	byHost := map[string]int64{}
	for _, h := range r.fleet.Hosts {
		byHost[h.Name] = peaks[agentName(h.Name)]
	}
	res.Hosts = hostUsages(r.fleet.Hosts, before, after, byHost)
	return nil
}

// waitReleased waits until all 60 run v2 (Ready, gate open), every app's
// CafeDeployment reports its release Completed, and the gateway serves all
// 60 again. It returns what went wrong, or "".
func (r *classicRunner) waitReleased(ctx context.Context, k classicKind, ns string, start time.Time, v2 classicTarget, res *classicResult) string {
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	settledAt, err := r.waitSettled(waitCtx, k, ns, v2)
	if err != nil {
		return err.Error()
	}
	res.Settled = settledAt.Sub(start)
	doneAt, err := r.waitDeploymentsDone(waitCtx, ns)
	if err != nil {
		return fmt.Sprintf("all %d settled on %s after %s, but %v", classicTotal, v2.Version, res.Settled.Round(time.Millisecond), err)
	}
	res.StatusDone = doneAt.Sub(start)
	res.Wall = max(res.Settled, res.StatusDone)
	if err := r.waitServed(waitCtx, k, ns, v2); err != nil {
		return err.Error()
	}
	res.GatewayDone = time.Since(start)
	return ""
}

// instanceTally counts the classic instances of a namespace by state.
type instanceTally struct {
	Total, Deleting int
	// Ready: the agent reports the instance Ready for its current spec.
	Ready int
	// OnTarget: its spec names the target package and its process runs it.
	OnTarget int
	// GateClosed: CAFE's traffic gate is not Open.
	GateClosed int
	// Settled: on the target, Ready and with the gate open.
	Settled int
}

func (t instanceTally) String() string {
	return fmt.Sprintf("%d instances (%d being deleted), %d Ready, %d run the target package, %d with the traffic gate closed, %d settled", t.Total, t.Deleting, t.Ready, t.OnTarget, t.GateClosed, t.Settled)
}

// settled: exactly n instances, none being deleted, each running the
// target package, Ready and with its gate open.
func (t instanceTally) settled(n int) bool {
	return t.Total == n && t.Deleting == 0 && t.Settled == n
}

// tallyInstances counts instances against the target package's SHA-256.
func tallyInstances(objs []client.Object, sha string) instanceTally {
	var t instanceTally
	for _, o := range objs {
		in, ok := o.(*cafev1alpha1.ClassicInstance)
		if !ok {
			continue
		}
		t.Total++
		if in.DeletionTimestamp != nil {
			t.Deleting++
			continue
		}
		ready := in.IsReady()
		onTarget := in.Spec.Artifact.SHA256 == sha && in.Status.Process != nil && in.Status.Process.SHA256 == sha
		open := in.GateOpen()
		if ready {
			t.Ready++
		}
		if onTarget {
			t.OnTarget++
		}
		if !open {
			t.GateClosed++
		}
		if ready && onTarget && open {
			t.Settled++
		}
	}
	return t
}

// waitSettled waits until all 60 instances (pods) of the namespace run
// the target, Ready (gate open), and returns when that was first seen.
func (r *classicRunner) waitSettled(ctx context.Context, k classicKind, ns string, t classicTarget) (time.Time, error) {
	c := r.cluster.client
	if k.VMs {
		var last instanceTally
		at, err := watchUntil(ctx, c, &cafev1alpha1.ClassicInstanceList{}, func(objs []client.Object) bool {
			last = tallyInstances(objs, t.Artifact.SHA256)
			return last.settled(classicTotal)
		}, client.InNamespace(ns))
		if err != nil {
			return at, fmt.Errorf("waiting for %d classic instances on %s (last seen: %s): %w", classicTotal, t.Version, last, err)
		}
		return at, nil
	}
	tally := newPodTallies(t.Image)
	at, err := watchEvents(ctx, c, &corev1.PodList{}, func(objs []client.Object) bool {
		for _, o := range objs {
			tally.set(o.(*corev1.Pod))
		}
		return tally.total.settled(classicTotal)
	}, func(ev watch.Event, _ cache.Store) bool {
		if pod, ok := ev.Object.(*corev1.Pod); ok {
			if ev.Type == watch.Deleted {
				tally.remove(pod.Name)
			} else {
				tally.set(pod)
			}
		}
		return tally.total.settled(classicTotal)
	}, client.InNamespace(ns))
	if err != nil {
		return at, fmt.Errorf("waiting for %d Ready pods on %s (last seen: %s): %w", classicTotal, t.Image, tally.total, err)
	}
	return at, nil
}

// deploymentsDone: n CafeDeployments, each of replicas, all reporting
// their release Completed with every replica updated and available; the
// second result names the first that is not.
func deploymentsDone(objs []client.Object, n int, replicas int32) (bool, string) {
	count := 0
	for _, o := range objs {
		cd, ok := o.(*cafev1alpha1.CafeDeployment)
		if !ok {
			continue
		}
		count++
		st := cd.Status
		if st.ObservedGeneration != cd.Generation || st.Release.Phase != cafev1alpha1.ReleasePhaseCompleted || st.CurrentRevision != st.UpdateRevision ||
			ptr.Deref(st.UpdatedReplicas, 0) != replicas || ptr.Deref(st.AvailableReplicas, 0) != replicas {
			return false, fmt.Sprintf("%s: release phase %s, observed generation %d of %d, updated %d, available %d of %d", cd.Name, orNone(string(st.Release.Phase)),
				st.ObservedGeneration, cd.Generation, ptr.Deref(st.UpdatedReplicas, 0), ptr.Deref(st.AvailableReplicas, 0), replicas)
		}
	}
	if count != n {
		return false, fmt.Sprintf("%d CafeDeployments of %d", count, n)
	}
	return true, ""
}

// waitDeploymentsDone waits until every app's CafeDeployment reports its
// release Completed, and returns when that was first seen.
func (r *classicRunner) waitDeploymentsDone(ctx context.Context, ns string) (time.Time, error) {
	var last string
	at, err := watchUntil(ctx, r.cluster.client, &cafev1alpha1.CafeDeploymentList{}, func(objs []client.Object) bool {
		var done bool
		done, last = deploymentsDone(objs, classicAppCount, classicReplicas)
		return done
	}, client.InNamespace(ns))
	if err != nil {
		return at, fmt.Errorf("waiting for every CafeDeployment to report its release Completed (last seen: %s): %w", last, err)
	}
	return at, nil
}

// endpointSets are the addresses of a kind's apps as the gateway would
// list them: want those that run the target, Ready and open to traffic;
// all every one of them.
type endpointSets struct {
	want, all map[netip.AddrPort]bool
}

// classicEndpoints lists the instances' endpoints (their status.address).
func classicEndpoints(items []cafev1alpha1.ClassicInstance, sha string) endpointSets {
	e := endpointSets{want: map[netip.AddrPort]bool{}, all: map[netip.AddrPort]bool{}}
	for i := range items {
		in := &items[i]
		ap, err := netip.ParseAddrPort(in.Status.Address)
		if err != nil {
			continue
		}
		e.all[ap] = true
		if tallyInstances([]client.Object{in}, sha).Settled == 1 {
			e.want[ap] = true
		}
	}
	return e
}

// podEndpoints lists the pods' endpoints (their IP and declared port).
func podEndpoints(items []corev1.Pod, image string) endpointSets {
	e := endpointSets{want: map[netip.AddrPort]bool{}, all: map[netip.AddrPort]bool{}}
	for i := range items {
		p := &items[i]
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || len(p.Spec.Containers) == 0 || len(p.Spec.Containers[0].Ports) == 0 {
			continue
		}
		ap := netip.AddrPortFrom(ip, uint16(p.Spec.Containers[0].Ports[0].ContainerPort))
		e.all[ap] = true
		if p.DeletionTimestamp == nil && podReady(p) && runsImage(p, image) {
			e.want[ap] = true
		}
	}
	return e
}

// served counts the gateway's servers that are wanted, and those that are
// the apps' but not wanted.
func (e endpointSets) served(servers []netip.AddrPort) (wanted, others int) {
	for _, s := range servers {
		switch {
		case e.want[s]:
			wanted++
		case e.all[s]:
			others++
		}
	}
	return wanted, others
}

// waitServed polls the gateway's API (it has no watch) until its servers
// include all 60 instances (pods) on the target and none of the apps' that
// are not. Every server must be in the pod network or a classic host's
// (the network rule: the gateway is never handed an address elsewhere).
func (r *classicRunner) waitServed(ctx context.Context, k classicKind, ns string, t classicTarget) error {
	c := r.cluster.client
	network := r.cluster.cp.PodNetwork()
	if network == nil {
		return errors.New("the control plane runs without a pod network")
	}
	hostRange, err := podnet.HostPrefix(network.CIDR)
	if err != nil {
		return err
	}
	tick := time.NewTicker(trafficPoll)
	defer tick.Stop()
	last := "nothing read yet"
	for {
		var e endpointSets
		if k.VMs {
			list := &cafev1alpha1.ClassicInstanceList{}
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return fmt.Errorf("listing the apps' instances: %w", err)
			}
			e = classicEndpoints(list.Items, t.Artifact.SHA256)
		} else {
			list := &corev1.PodList{}
			if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return fmt.Errorf("listing the apps' pods: %w", err)
			}
			e = podEndpoints(list.Items, t.Image)
		}
		servers, err := r.traefik.Backends(ctx)
		if err != nil {
			return fmt.Errorf("asking the gateway for its servers: %w", err)
		}
		for _, s := range servers {
			if !network.CIDR.Contains(s.Addr()) && !hostRange.Contains(s.Addr()) {
				return fmt.Errorf("the gateway was handed %s, outside the pod network %s and the classic hosts' range %s", s, network.CIDR, hostRange)
			}
		}
		wanted, others := e.served(servers)
		if len(e.want) == classicTotal && wanted == classicTotal && others == 0 {
			return nil
		}
		last = fmt.Sprintf("%d of the apps' endpoints run %s and are Ready; the gateway serves %d of them and %d other endpoints of the apps", len(e.want), t.Version, wanted, others)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the gateway to serve all %d at %s: %s: %w", classicTotal, t.Version, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// describe summarises the apps' state, for a release that did not finish.
func (r *classicRunner) describe(ctx context.Context, ns string) string {
	c := r.cluster.client
	var b strings.Builder
	cds := &cafev1alpha1.CafeDeploymentList{}
	if err := c.List(ctx, cds, client.InNamespace(ns)); err != nil {
		return fmt.Sprintf("listing the CafeDeployments: %v", err)
	}
	for _, cd := range cds.Items {
		st := cd.Status
		fmt.Fprintf(&b, "CafeDeployment %s: generation %d, observedGeneration %d, release phase %s, group %d of %d, updated %d, available %d\n",
			cd.Name, cd.Generation, st.ObservedGeneration, orNone(string(st.Release.Phase)), ptr.Deref(st.Release.CurrentGroup, -1), ptr.Deref(st.Release.TotalGroups, -1),
			ptr.Deref(st.UpdatedReplicas, 0), ptr.Deref(st.AvailableReplicas, 0))
		for _, cond := range st.Conditions {
			if cond.Status != metav1.ConditionTrue {
				fmt.Fprintf(&b, "  %s=%s (%s): %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	sets := &cafev1alpha1.ClassicSetList{}
	if err := c.List(ctx, sets, client.InNamespace(ns)); err == nil {
		for _, s := range sets.Items {
			ss := s.Status
			fmt.Fprintf(&b, "ClassicSet %s: partition %d, replicas %d, ready %d, available %d, updated %d, updatedAvailable %d\n",
				s.Name, ptr.Deref(s.Spec.UpdateStrategy.Partition, 0), ss.Replicas, ss.ReadyReplicas, ss.AvailableReplicas, ss.UpdatedReplicas, ss.UpdatedAvailableReplicas)
			for _, cond := range ss.Conditions {
				if cond.Status != metav1.ConditionTrue {
					fmt.Fprintf(&b, "  %s=%s (%s): %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
				}
			}
		}
	}
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := c.List(ctx, instances, client.InNamespace(ns)); err == nil {
		shown := 0
		for _, in := range instances.Items {
			if in.IsReady() && in.GateOpen() || shown >= 10 {
				continue
			}
			shown++
			fmt.Fprintf(&b, "ClassicInstance %s on %s: gate %s, phase %s", in.Name, in.Spec.HostName, orNone(string(in.Spec.TrafficGate)), orNone(in.Status.Phase))
			for _, cond := range in.Status.Conditions {
				fmt.Fprintf(&b, ", %s=%s (%s): %s", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
			fmt.Fprintf(&b, ", finalizers %v\n", in.Finalizers)
		}
	}
	return b.String()
}
