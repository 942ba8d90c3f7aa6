package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/controlplane/kwokstages"
	"github.com/cafe-io/cafe/internal/loadgen"
)

// defaultOut is the page a default run writes.
const defaultOut = "docs/benchmarks.md"

// options are the command-line flags.
type options struct {
	Runs           int
	Replicas       int
	Nodes          int
	BatchSize      int
	MaxUnavailable int
	Timeout        time.Duration
	Scenarios      string
	Out            string
	KeepState      bool
	ManagerArgs    string
	// NodeFailureVariants are the node-failure scenario's variants.
	NodeFailureVariants string
	// TrafficRate, TrafficReplicas and TrafficBaseline shape the traffic
	// scenario.
	TrafficRate     int
	TrafficReplicas int
	TrafficBaseline time.Duration
	// ClassicRate and ClassicBaseline shape the classic scenario's load.
	ClassicRate     int
	ClassicBaseline time.Duration
	// ProfileDir and ProfileSeconds: CPU profiles of the apiserver and the
	// controller-manager during each release.
	ProfileDir     string
	ProfileSeconds int
	// PodDelays simulate kubelet latencies for the whole run (the
	// realistic-delay variant).
	PodDelays kwokstages.Delays
	// Scale runs the scale variant (applyScale).
	Scale bool
	// SharedPlane runs every release on one control plane instead of a
	// fresh one each.
	SharedPlane bool
}

func parseFlags() options {
	var o options
	flag.IntVar(&o.Runs, "runs", 1, "releases per scenario; the report shows medians")
	flag.IntVar(&o.Replicas, "replicas", 1000, "pods per workload")
	flag.IntVar(&o.Nodes, "nodes", 100, "simulated nodes, round-robin over zone-a, zone-b, zone-c")
	flag.IntVar(&o.BatchSize, "batch-size", 100, "CafeDeployment release group size")
	flag.IntVar(&o.MaxUnavailable, "max-unavailable", 100, "the Deployment's maxUnavailable (the CafeDeployment's per-unit value is derived from its plan)")
	flag.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "longest wait for pods to be created or released")
	flag.StringVar(&o.Scenarios, "scenarios", "inplaceset,inplaceset-endpoints,deployment,cloneset,replicaset,app-rollback,app-rollback-endpoints,node-failure,traffic,classic,iam", "comma-separated scenarios to run, in this order (inplaceset-endpoints is the InPlaceSet release with spec.endpoints: CAFE writes the Service's EndpointSlices; app-rollback-endpoints is the fast rollback of an app with spec.workload.endpoints CAFE, compared with inplaceset-endpoints; iam (1,000 users in 50 groups over 100 namespaces projected onto RBAC, then IAM changes timed) runs on a control plane of its own after the others, about 2 minutes; cloneset builds OpenKruise's kruise-manager into bin/ the first time, a few minutes; node-failure takes about 9 minutes, 6 of them the upstream baseline; traffic and then classic run last whatever their place, each on a control plane of its own with the gateway, and need root; classic (60 instances of 10 apps on 6 classic hosts released under load, then the same as pods) takes about 3 minutes and needs bin/demo-app from make build; endpoint-owned, not in this list, measures a design rather than CAFE: bare pods behind a Service without a selector, released in place by the benchmark, which writes the Service's EndpointSlices itself (docs/cafedeployment.md))")
	flag.StringVar(&o.NodeFailureVariants, "node-failure-variants", "cafe,upstream,cafe-node-down", "variants of the node-failure scenario to run, in this order: cafe (CAFE's node lifecycle, default policy), upstream (the upstream controller alone: CAFE in Observe mode; about 6 minutes), cafe-node-down (heartbeats and kubelet endpoint stop)")
	flag.IntVar(&o.TrafficRate, "traffic-rate", 500, "traffic scenario: requests per second through the gateway, lowered (and said so) if the gateway would use more than half a core at it")
	flag.IntVar(&o.TrafficReplicas, "traffic-replicas", 300, "traffic scenario: pods per workload")
	flag.DurationVar(&o.TrafficBaseline, "traffic-baseline", 10*time.Second, "traffic scenario: load before each release (the baseline latency)")
	flag.IntVar(&o.ClassicRate, "classic-rate", 200, "classic scenario: requests per second through the gateway, spread over the 60 instances (then the 60 pods), lowered (and said so) if the gateway would use more than half a core at it")
	flag.DurationVar(&o.ClassicBaseline, "classic-baseline", 5*time.Second, "classic scenario: load before each release (the baseline latency)")
	flag.StringVar(&o.Out, "out", defaultOut, "report to write, relative to the repository root (empty: print only); when only some parts of the page ran (the releases, node failure, traffic) and the file exists, only their sections are replaced")
	flag.BoolVar(&o.KeepState, "keep-state", false, "keep the control plane's state directory (logs) after the run")
	flag.StringVar(&o.ManagerArgs, "manager-args", "", "extra arguments for cafe manager, space-separated (e.g. \"--kube-api-qps=200 --kube-api-burst=400\")")
	flag.StringVar(&o.ProfileDir, "profile-dir", "", "write CPU profiles of kube-apiserver and kube-controller-manager, taken during each release, to this directory (go tool pprof reads them)")
	flag.IntVar(&o.ProfileSeconds, "profile-seconds", 20, "length of each -profile-dir profile, from the image change")
	flag.DurationVar(&o.PodDelays.PodStart, "pod-start-delay", 0, "simulated start of a new pod (scheduling, image pull, container start) for every workload: the realistic-delay variant uses 3s; write it to its own page (-out docs/benchmarks-realistic-delays.md)")
	flag.DurationVar(&o.PodDelays.InPlaceRestart, "pod-restart-delay", 0, "simulated in-place container restart after an image change: the realistic-delay variant uses 1s")
	flag.BoolVar(&o.Scale, "scale", false, fmt.Sprintf("the scale variant: %d pods on %d nodes in groups of %d, the InPlaceSet release only, written to %s (overrides -replicas, -nodes, -batch-size, -max-unavailable, -scenarios and the default -out)", scaleReplicas, scaleNodes, scaleBatch, scalePage))
	flag.BoolVar(&o.SharedPlane, "shared-plane", false, "run every release (and node-failure variant) on one control plane, as before 2026-12-06, instead of on a fresh one each; a shared plane's cost grows over a long run (etcd, the API server's caches and heap), so later releases pay for earlier ones")
	flag.Parse()
	if o.Scale {
		o.applyScale()
	}
	return o
}

func main() {
	// The benchmark's own clients log nothing worth reading; CAFE's logs are
	// in its process's output.
	ctrllog.SetLogger(logr.Discard())
	// Nor do client-go's reflectors, which warn when a watch the benchmark
	// stops ends.
	klog.SetLogger(logr.Discard())
	if err := run(parseFlags()); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// catalog lists every scenario the benchmark knows.
func catalog(s shape) []scenario {
	return []scenario{
		{Key: "inplaceset", Title: "InPlaceSet mode", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet}},
		{Key: inPlaceEndpointsKey, Title: "InPlaceSet mode, endpoints written by CAFE", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeInPlaceSet, ownEndpoints: true}},
		{Key: "deployment", Title: "native Deployment", Workload: deployment{shape: s}},
		{Key: cloneSetKey, Title: "OpenKruise CloneSet", Workload: cloneSet{shape: s}},
		{Key: "replicaset", Title: "ReplicaSet mode", Workload: cafeDeployment{shape: s, mode: cafev1alpha1.PodSetTypeReplicaSet}},
		{Key: "app-rollback", Title: "app rollback --fast", Workload: appRollback{shape: s}},
		{Key: appRollbackEndpointsKey, Title: "app rollback --fast, endpoints written by CAFE", Workload: appRollback{shape: s, ownEndpoints: true}},
		{Key: endpointOwnedKey, Title: "in place, endpoints owned (emulated design)", Workload: &endpointOwned{shape: s}},
		{Key: nodeFailureKey, Title: "node failure", NodeFailure: true},
		{Key: trafficKey, Title: "traffic through the gateway", Traffic: true},
		{Key: classicKey, Title: "classic hosts under load", Classic: true},
		{Key: iamKey, Title: "IAM projection at scale", IAM: true},
	}
}

// selectScenarios picks the named scenarios from the catalog, in the
// order given.
func selectScenarios(all []scenario, names string) ([]scenario, error) {
	return selectByKey("-scenarios", "scenario", all, func(s scenario) string { return s.Key }, names)
}

// selectByKey picks, in the order given, the entries of all whose keys the
// comma-separated names list; flag and noun say what an unknown name was.
func selectByKey[T any](flag, noun string, all []T, key func(T) string, names string) ([]T, error) {
	var out []T
	for name := range strings.SplitSeq(names, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(all, func(t T) bool { return key(t) == name })
		if i < 0 {
			return nil, fmt.Errorf("%s: unknown %s %q", flag, noun, name)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func run(o options) error {
	if o.Runs < 1 || o.Replicas < 1 || o.BatchSize < 1 || o.MaxUnavailable < 1 {
		return errors.New("-runs, -replicas, -batch-size and -max-unavailable must be at least 1")
	}
	if o.TrafficRate < 1 || o.TrafficRate > loadgen.MaxRate || o.TrafficReplicas < 3 || o.TrafficBaseline < time.Second {
		return fmt.Errorf("-traffic-rate must be 1 to %d, -traffic-replicas at least 3 and -traffic-baseline at least 1s", loadgen.MaxRate)
	}
	if o.ClassicRate < 1 || o.ClassicRate > loadgen.MaxRate || o.ClassicBaseline < time.Second {
		return fmt.Errorf("-classic-rate must be 1 to %d and -classic-baseline at least 1s", loadgen.MaxRate)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("finding the working directory: %w", err)
	}
	repoRoot, err := controlplane.FindRepoRoot(cwd)
	if err != nil {
		return fmt.Errorf("finding the repository root: %w", err)
	}
	sh := shape{Replicas: int32(o.Replicas), Zones: []string{"zone-a", "zone-b", "zone-c"}, BatchSize: int32(o.BatchSize), MaxUnavailable: int32(o.MaxUnavailable)}
	scenarios, err := selectScenarios(catalog(sh), o.Scenarios)
	if err != nil {
		return err
	}
	variants, err := selectNodeFailureVariants(o.NodeFailureVariants)
	if err != nil {
		return err
	}
	scenarios, own := withoutOwnPlanes(scenarios)
	if own.Traffic && os.Geteuid() != 0 {
		return errors.New("the traffic scenario needs root (it creates a network namespace for the simulated pods' IPs); run the benchmark as root, or leave traffic out of -scenarios")
	}
	if own.Classic && os.Geteuid() != 0 {
		return errors.New("the classic scenario needs root (it creates network namespaces for the pods' IPs and the classic hosts); run the benchmark as root, or leave classic out of -scenarios")
	}
	stateDir, err := os.MkdirTemp("", "cafe-bench-")
	if err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	started := time.Now()
	// Described before the run: bin/cafe is what was built for it.
	m := describeMachine(repoRoot)
	rep := report{Runs: o.Runs}
	if len(scenarios) > 0 {
		rep, err = benchmark(ctx, o, repoRoot, filepath.Join(stateDir, "releases"), sh, scenarios, variants)
	}
	if err == nil && own.Traffic {
		rep.Traffic, err = benchmarkTraffic(ctx, o, repoRoot, filepath.Join(stateDir, trafficKey))
	}
	if err == nil && own.Classic {
		rep.Classic, err = benchmarkClassic(ctx, o, repoRoot, filepath.Join(stateDir, classicKey))
	}
	if err == nil && own.IAM {
		rep.IAM, err = benchmarkIAM(ctx, o, repoRoot, filepath.Join(stateDir, iamKey))
	}
	if err != nil || o.KeepState {
		fmt.Fprintf(os.Stderr, "control plane state and logs kept in %s\n", stateDir)
	} else {
		_ = os.RemoveAll(stateDir)
	}
	if err != nil {
		return err
	}
	rep.Started, rep.Duration, rep.Machine = started, time.Since(started), m
	fmt.Print("\n" + rep.summary())
	if o.Out == "" {
		return nil
	}
	path := filepath.Join(repoRoot, o.Out)
	page, ran := rep.markdown(), partsRan(scenarios, own)
	if old, err := os.ReadFile(path); err == nil && len(ran) < len(allParts) {
		page = mergeParts(string(old), page, ran, rep.partNote(o.selection(), ran))
		fmt.Printf("only the sections of %s are replaced\n", strings.Join(ran, ", "))
	}
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	fmt.Printf("report written to %s\n", path)
	return nil
}

// ownPlanes says which scenarios that run on a control plane of their own
// were asked for.
type ownPlanes struct{ Traffic, Classic, IAM bool }

// withoutOwnPlanes takes the traffic, classic and IAM scenarios out of the
// list (they run last, each on a control plane of its own, in that order)
// and says which were there.
func withoutOwnPlanes(scenarios []scenario) (_ []scenario, own ownPlanes) {
	var out []scenario
	for _, s := range scenarios {
		switch {
		case s.Traffic:
			own.Traffic = true
		case s.Classic:
			own.Classic = true
		case s.IAM:
			own.IAM = true
		default:
			out = append(out, s)
		}
	}
	return out, own
}

// benchmark runs every scenario o.Runs times (interleaved), each release on
// a fresh control plane unless o.SharedPlane, and stops everything, even on
// error. The write floor is measured on the last plane, after its release.
func benchmark(ctx context.Context, o options, repoRoot, stateDir string, sh shape, scenarios []scenario, variants []nodeFailureVariant) (report, error) {
	out := io.Writer(os.Stdout)
	managerArgs := strings.Fields(o.ManagerArgs)
	// Named here so that the page's command line shows it.
	memoryArgs, err := installedMemoryArgs(repoRoot, managerArgs)
	if err != nil {
		return report{}, err
	}
	managerArgs = append(managerArgs, memoryArgs...)
	r := &runner{shape: sh, timeout: o.Timeout, profiler: profiler{dir: o.ProfileDir, seconds: o.ProfileSeconds}}
	planes, planeDir := 0, ""
	// plane returns the plane the next release runs on, starting a fresh
	// one (and stopping the last) unless the plane is shared.
	plane := func() (string, error) {
		if r.cluster != nil && o.SharedPlane {
			return planeDir, nil
		}
		if err := r.stopCluster(); err != nil {
			return "", err
		}
		planes++
		dir := filepath.Join(stateDir, fmt.Sprintf("plane-%d", planes))
		c, err := startCluster(ctx, clusterOptions{RepoRoot: repoRoot, StateDir: dir, Nodes: o.Nodes, Zones: sh.Zones, ManagerArgs: managerArgs, Profiling: o.ProfileDir != "", PodDelays: o.PodDelays, Out: out})
		if err != nil {
			return "", err
		}
		r.cluster, planeDir = c, dir
		return dir, nil
	}
	defer func() { _ = r.stopCluster() }()
	results := map[string][]runResult{}
	var nodeFailures []nodeFailureResult
	for run := 1; run <= o.Runs; run++ {
		for _, s := range scenarios {
			if s.NodeFailure {
				for _, v := range variants {
					if _, err := plane(); err != nil {
						return report{}, err
					}
					start := time.Now()
					res, err := r.runNodeFailure(ctx, v, run)
					if err != nil {
						return report{}, err
					}
					res.Took = time.Since(start)
					nodeFailures = append(nodeFailures, res)
				}
				continue
			}
			if s.Workload == nil {
				continue
			}
			dir, err := plane()
			if err != nil {
				return report{}, err
			}
			res, err := r.runWithPeer(ctx, s, run, repoRoot, dir)
			if err != nil {
				return report{}, err
			}
			results[s.Key] = append(results[s.Key], res)
		}
	}
	if r.cluster == nil {
		return report{}, errors.New("no release or node-failure variant was asked for")
	}
	rep := report{Shape: sh, Nodes: o.Nodes, Runs: o.Runs, ManagerArgs: managerArgs, PodDelays: o.PodDelays, NodeFailures: nodeFailures, Planes: planes}
	for _, s := range scenarios {
		if s.NodeFailure {
			continue
		}
		rep.Aggregates = append(rep.Aggregates, aggregateRuns(s, results[s.Key]))
	}
	if len(rep.Aggregates) > 0 {
		floor, err := r.measureWriteFloor(ctx)
		if err != nil {
			return report{}, fmt.Errorf("measuring the write floor: %w", err)
		}
		rep.WriteFloor = &floor
	}
	if err := r.stopCluster(); err != nil {
		return report{}, err
	}
	rep.LifetimePeakRSS = r.lifetimePeakRSS
	rep.Scale = o.Scale
	rep.Verdicts = checkTargets(rep.Aggregates, rep.LifetimePeakRSS, limitsFor(rep.PodDelays, o.Scale))
	return rep, nil
}
