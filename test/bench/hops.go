package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/cafe-io/cafe/internal/podutil"
)

// hopRecorder follows, from the benchmark's own pod watch during a release,
// each pod updated in place through the lossless protocol's steps, so the
// report can say where a release's time goes. Each step is the first time
// the watch showed it; every step is taken by a different component (CAFE,
// the simulated kubelet, kube-controller-manager's EndpointSlice controller)
// reacting to the one before.
type hopRecorder struct {
	mu    sync.Mutex
	image string
	pods  map[string]*podHops
	// listing is, for each EndpointSlice seen, the pods it lists ready or
	// serving; sawSlices tells whether any was seen at all.
	listing   map[string]map[string]bool
	sawSlices bool
}

// podHops are the times a pod was first seen at each step.
type podHops struct {
	gateClosed time.Time // CAFE closed the traffic-ready gate
	notReady   time.Time // the kubelet turned Ready False
	dropped    time.Time // no EndpointSlice listed it ready or serving any more
	patched    time.Time // CAFE patched the image (after the EndpointSlices let go)
	restarted  time.Time // the kubelet reported the new image
	gateOpened time.Time // CAFE reopened the gate
	ready      time.Time // the kubelet turned Ready True: available again
}

func newHopRecorder(image string) *hopRecorder {
	return &hopRecorder{image: image, pods: map[string]*podHops{}, listing: map[string]map[string]bool{}}
}

// hopsOf is the record of the pod named name, created on first use.
func (h *hopRecorder) hopsOf(name string) *podHops {
	p := h.pods[name]
	if p == nil {
		p = &podHops{}
		h.pods[name] = p
	}
	return p
}

// observeSlice records, from the benchmark's EndpointSlice watch, when a
// pod stopped being listed ready or serving by every slice (gone: the
// slice was deleted). Only the first time counts: in a release a pod
// updated in place is dropped once, when it drains.
func (h *hopRecorder) observeSlice(at time.Time, slice *discoveryv1.EndpointSlice, gone bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sawSlices = true
	now := map[string]bool{}
	if !gone {
		for _, e := range slice.Endpoints {
			// An unknown readiness counts as ready, as the API asks of
			// consumers (and as endpointCounts reads it).
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" && (ptr.Deref(e.Conditions.Ready, true) || ptr.Deref(e.Conditions.Serving, false)) {
				now[e.TargetRef.Name] = true
			}
		}
	}
	before := h.listing[slice.Name]
	h.listing[slice.Name] = now
	for name := range before {
		if !now[name] && !h.listedElsewhere(name, slice.Name) {
			firstAt(&h.hopsOf(name).dropped, at, true)
		}
	}
}

func (h *hopRecorder) listedElsewhere(pod, except string) bool {
	for name, pods := range h.listing {
		if name != except && pods[pod] {
			return true
		}
	}
	return false
}

// observePod records the steps one pod shows at time at.
func (h *hopRecorder) observePod(at time.Time, pod *corev1.Pod) {
	if len(pod.Spec.Containers) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.hopsOf(pod.Name)
	specNew := pod.Spec.Containers[0].Image == h.image
	statusNew := runsImage(pod, h.image)
	closed, ready := gateClosed(pod), podutil.Ready(pod)
	firstAt(&p.gateClosed, at, closed && !specNew)
	firstAt(&p.notReady, at, !p.gateClosed.IsZero() && !ready && !specNew)
	firstAt(&p.patched, at, specNew)
	firstAt(&p.restarted, at, statusNew)
	firstAt(&p.gateOpened, at, statusNew && !closed)
	firstAt(&p.ready, at, statusNew && ready)
}

func firstAt(t *time.Time, at time.Time, now bool) {
	if now && t.IsZero() {
		*t = at
	}
}

// hopStats is one step's latency over the pods that took it.
type hopStats struct {
	Name     string
	By       string
	P50, P90 time.Duration
	N        int
}

// hopSummary is where a release's time went.
type hopSummary struct {
	Pods  int
	Steps []hopStats
	// Cycle is a pod's whole cycle, gate closed to Ready again.
	Cycle hopStats
	// Groups are the release's groups as the gates closed: each group's
	// slowest pod cycle, and the hand-over from a group's last pod ready to
	// the next group's first gate closed.
	Groups    int
	Slowest   []time.Duration
	HandOvers []time.Duration
}

// summary computes the step latencies; groupSize splits the pods, in the
// order their gates closed, into the release's groups.
func (h *hopRecorder) summary(groupSize int) *hopSummary {
	h.mu.Lock()
	defer h.mu.Unlock()
	var done []*podHops
	for _, p := range h.pods {
		if !p.gateClosed.IsZero() && !p.ready.IsZero() {
			done = append(done, p)
		}
	}
	if len(done) == 0 {
		return nil
	}
	type step struct {
		name, by string
		from, to func(*podHops) time.Time
	}
	steps := []step{
		{"gate closed → Ready False", "CAFE, in the gate write; else the kubelet (kwok)", func(p *podHops) time.Time { return p.gateClosed }, func(p *podHops) time.Time { return p.notReady }},
	}
	if h.sawSlices {
		// Two watches: a drop seen a moment before the Ready False it
		// follows counts as at once; a pod never seen dropped is left out.
		drained := func(p *podHops) time.Time {
			if !p.dropped.IsZero() && p.dropped.Before(p.notReady) {
				return p.notReady
			}
			return p.dropped
		}
		steps = append(steps,
			step{"Ready False → EndpointSlices dropped it", "EndpointSlice controller", func(p *podHops) time.Time { return p.notReady }, drained},
			step{"dropped → image patched", "CAFE", drained, func(p *podHops) time.Time { return p.patched }})
	} else {
		steps = append(steps, step{"Ready False → image patched", "EndpointSlice controller, then CAFE", func(p *podHops) time.Time { return p.notReady }, func(p *podHops) time.Time { return p.patched }})
	}
	steps = append(steps, []step{
		{"image patched → container restarted", "kubelet (kwok)", func(p *podHops) time.Time { return p.patched }, func(p *podHops) time.Time { return p.restarted }},
		{"restarted → gate reopened", "CAFE", func(p *podHops) time.Time { return p.restarted }, func(p *podHops) time.Time { return p.gateOpened }},
		{"gate reopened → Ready True", "CAFE, in the gate write when nothing else holds it; else the kubelet (kwok)", func(p *podHops) time.Time { return p.gateOpened }, func(p *podHops) time.Time { return p.ready }},
	}...)
	s := &hopSummary{Pods: len(done)}
	for _, st := range steps {
		s.Steps = append(s.Steps, statsOf(st.name, st.by, done, st.from, st.to))
	}
	s.Cycle = statsOf("gate closed → Ready True", "whole cycle", done, func(p *podHops) time.Time { return p.gateClosed }, func(p *podHops) time.Time { return p.ready })
	s.splitGroups(done, groupSize)
	return s
}

func statsOf(name, by string, pods []*podHops, from, to func(*podHops) time.Time) hopStats {
	var ds []time.Duration
	for _, p := range pods {
		a, b := from(p), to(p)
		if !a.IsZero() && !b.IsZero() && !b.Before(a) {
			ds = append(ds, b.Sub(a))
		}
	}
	st := hopStats{Name: name, By: by, N: len(ds)}
	if len(ds) > 0 {
		slices.Sort(ds)
		st.P50, st.P90 = ds[(len(ds)-1)/2], ds[(len(ds)-1)*9/10]
	}
	return st
}

func (s *hopSummary) splitGroups(pods []*podHops, size int) {
	if size <= 0 {
		return
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].gateClosed.Before(pods[j].gateClosed) })
	var lastReady time.Time
	for start := 0; start < len(pods); start += size {
		group := pods[start:min(start+size, len(pods))]
		var slowest time.Duration
		var firstClosed, groupReady time.Time
		for _, p := range group {
			slowest = max(slowest, p.ready.Sub(p.gateClosed))
			if firstClosed.IsZero() || p.gateClosed.Before(firstClosed) {
				firstClosed = p.gateClosed
			}
			if p.ready.After(groupReady) {
				groupReady = p.ready
			}
		}
		if !lastReady.IsZero() {
			s.HandOvers = append(s.HandOvers, firstClosed.Sub(lastReady))
		}
		s.Slowest = append(s.Slowest, slowest)
		lastReady = groupReady
		s.Groups++
	}
}

// lines renders the summary for the report's explanation of wall time.
func (s *hopSummary) lines() []string {
	var steps []string
	for _, st := range s.Steps {
		steps = append(steps, fmt.Sprintf("%s (%s) %s / %s", st.Name, st.By, secs(st.P50), secs(st.P90)))
	}
	out := []string{fmt.Sprintf("Where a pod's time goes (from the benchmark's pod watch, %d pods updated in place; median / 90th percentile): %s; the whole cycle %s / %s. Each step waits for a different component to see the one before, on the same two saturated cores.",
		s.Pods, strings.Join(steps, "; "), secs(s.Cycle.P50), secs(s.Cycle.P90))}
	if s.Groups > 1 {
		slowest, handOver := s.meanSlowest(), s.meanHandOver()
		out = append(out, fmt.Sprintf("A group's slowest pod cycle is %s on average over %d groups; from a group's last pod Ready to the next group's first gate closed: %s on average (negative: the next group began before the group's last pod was back, the release flowing between groups; positive: a barrier's hand-over).",
			secs(slowest), s.Groups, secs(handOver)))
	}
	return out
}

func (s *hopSummary) meanSlowest() time.Duration {
	var sum time.Duration
	for _, d := range s.Slowest {
		sum += d
	}
	return sum / time.Duration(max(len(s.Slowest), 1))
}

func (s *hopSummary) meanHandOver() time.Duration {
	var sum time.Duration
	for _, d := range s.HandOvers {
		sum += d
	}
	return sum / time.Duration(max(len(s.HandOvers), 1))
}

// barrierLine says how the wall-time limit compares with groups that do
// not overlap: each would take at least a pod's cycle.
func (s *hopSummary) barrierLine(limit time.Duration) string {
	if s.Groups < 2 {
		return ""
	}
	perGroup := limit / time.Duration(s.Groups)
	if perGroup >= s.Cycle.P50 {
		return fmt.Sprintf("The limit, %s, leaves %s per group, more than the median pod's cycle (%s): the stragglers and the hand-overs are what stand in the way.", seconds(limit), secs(perGroup), secs(s.Cycle.P50))
	}
	return fmt.Sprintf("The limit, %s, would leave %s per group, less than the median pod's cycle (%s): %d groups that did not overlap would take %s; only more of the release in flight at once (groups overlapping further, more pods per group) could meet it.",
		seconds(limit), secs(perGroup), secs(s.Cycle.P50), s.Groups, seconds(time.Duration(s.Groups)*s.Cycle.P50))
}

// secs renders a step's latency to the hundredth of a second.
func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
