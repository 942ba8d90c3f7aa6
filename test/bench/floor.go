package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The write floor: how many pod writes per second this control plane
// sustains when nothing but writing is asked of it, measured in the same
// run as the releases, so a release's own write rate can be read against
// what the API server could take at most.
const (
	floorNamespace = "bench-write-floor"
	floorPods      = 1000
	floorWorkers   = 32
	floorDuration  = 20 * time.Second
	// floorScheduler names no scheduler: the floor's pods stay unscheduled,
	// so no kubelet (kwok) and no scheduler works on them.
	floorScheduler = "bench-write-floor-none"
	// floorCondition is the condition each write changes.
	floorCondition corev1.PodConditionType = "bench.cafe.io/Written"
)

// writeFloor is the outcome of the measurement.
type writeFloor struct {
	Pods, Workers int
	Window        time.Duration
	Writes        int64
	Failed        int64
}

func (f writeFloor) perSecond() float64 { return float64(f.Writes) / f.Window.Seconds() }

// measureWriteFloor creates floorPods unscheduled pods and has floorWorkers
// patch a condition of their status, round-robin, for floorDuration, as
// fast as the API server answers; then deletes them.
func (r *runner) measureWriteFloor(ctx context.Context) (writeFloor, error) {
	c := r.cluster.client
	f := writeFloor{Pods: floorPods, Workers: floorWorkers}
	fmt.Fprintf(r.cluster.out, "[write floor] %d unscheduled pods, %d writers patching their status for %s\n", f.Pods, f.Workers, floorDuration)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: floorNamespace}}); err != nil {
		return f, fmt.Errorf("creating namespace %s: %w", floorNamespace, err)
	}
	defer func() {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		if err := r.tearDown(cleanupCtx, floorNamespace); err != nil {
			fmt.Fprintf(r.cluster.out, "[write floor] cleaning up: %v\n", err)
		}
	}()
	names := make([]string, f.Pods)
	for i := range names {
		names[i] = fmt.Sprintf("floor-%04d", i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: names[i]},
			Spec: corev1.PodSpec{
				SchedulerName: floorScheduler,
				Containers:    podTemplate(imageV1).Spec.Containers,
			},
		}
		if err := c.Create(ctx, pod); err != nil {
			return f, fmt.Errorf("creating pod %s: %w", names[i], err)
		}
	}
	start := time.Now()
	deadline := start.Add(floorDuration)
	var writes, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range f.Workers {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += f.Workers {
				if err := patchFloorCondition(ctx, c, names[i%len(names)], i); err != nil {
					failed.Add(1)
					continue
				}
				writes.Add(1)
			}
		})
	}
	wg.Wait()
	f.Window, f.Writes, f.Failed = time.Since(start), writes.Load(), failed.Load()
	if ctx.Err() != nil {
		return f, ctx.Err()
	}
	fmt.Fprintf(r.cluster.out, "[write floor] %d writes in %s: %.0f writes/s (%d failed)\n", f.Writes, f.Window.Round(time.Millisecond), f.perSecond(), f.Failed)
	return f, nil
}

// patchFloorCondition writes the floor's condition with message n, so that
// every write changes the pod (a no-op write costs the API server less).
func patchFloorCondition(ctx context.Context, c client.Client, name string, n int) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []map[string]any{{
		"type": floorCondition, "status": corev1.ConditionTrue, "message": fmt.Sprint(n),
	}}}})
	if err != nil {
		return err
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: name}}
	return c.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, patch))
}

// The scale variant (issue 14): ten times the pods on ten times the nodes,
// the InPlaceSet release alone, on a page of its own.
const (
	scaleReplicas = 10000
	scaleNodes    = 1000
	scaleBatch    = 1000
	scalePage     = "docs/benchmarks-scale.md"
)

// applyScale turns the options into the scale variant's.
func (o *options) applyScale() {
	o.Replicas, o.Nodes, o.BatchSize, o.MaxUnavailable = scaleReplicas, scaleNodes, scaleBatch, scaleBatch
	o.Scenarios = "inplaceset"
	if o.Out == defaultOut {
		o.Out = scalePage
	}
}

// selection is how the command line chose what ran, as the page's preamble
// quotes it.
func (o *options) selection() string {
	if o.Scale {
		return "-scale"
	}
	return "-scenarios " + o.Scenarios
}
