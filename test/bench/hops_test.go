package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// stagedPod is a pod at one step of an in-place update from v1 to v2.
func stagedPod(name string, step int) *corev1.Pod {
	gate, ready, spec, status := corev1.ConditionTrue, corev1.ConditionTrue, imageV1, imageV1
	switch step {
	case 1: // gate closed
		gate = corev1.ConditionFalse
	case 2: // kubelet saw it
		gate, ready = corev1.ConditionFalse, corev1.ConditionFalse
	case 3: // patched
		gate, ready, spec = corev1.ConditionFalse, corev1.ConditionFalse, imageV2
	case 4: // restarted
		gate, ready, spec, status = corev1.ConditionFalse, corev1.ConditionFalse, imageV2, imageV2
	case 5: // gate reopened
		ready, spec, status = corev1.ConditionFalse, imageV2, imageV2
	case 6: // Ready again
		spec, status = imageV2, imageV2
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: spec}}},
		Status: corev1.PodStatus{
			Conditions: []corev1.PodCondition{
				{Type: cafev1alpha1.TrafficReadyCondition, Status: gate},
				{Type: corev1.PodReady, Status: ready},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: status, Ready: true}},
		},
	}
}

func TestHopRecorderTimesEachStepAndTheHandOverBetweenGroups(t *testing.T) {
	h := newHopRecorder(imageV2)
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	// Two groups of two pods: each step of group 0 takes 100 ms (pod b 200
	// ms), group 1 starts 500 ms after group 0's last pod is Ready.
	see := func(at time.Duration, pods ...*corev1.Pod) {
		for _, p := range pods {
			h.observePod(t0.Add(at), p)
		}
	}
	for step := 0; step <= 6; step++ {
		see(time.Duration(step)*100*time.Millisecond, stagedPod("a", step))
		see(time.Duration(step)*200*time.Millisecond, stagedPod("b", step))
	}
	for step := 1; step <= 6; step++ {
		at := 1700*time.Millisecond + time.Duration(step)*100*time.Millisecond
		see(at, stagedPod("c", step), stagedPod("d", step))
	}
	s := h.summary(2)
	if s == nil || s.Pods != 4 || len(s.Steps) != 5 {
		t.Fatalf("summary = %+v, want 4 pods and 5 steps", s)
	}
	for _, st := range s.Steps {
		if st.P50 != 100*time.Millisecond || st.P90 != 100*time.Millisecond || st.N != 4 {
			t.Errorf("%s: p50 %s p90 %s n %d, want 100ms, 100ms over 4 pods", st.Name, st.P50, st.P90, st.N)
		}
	}
	if s.Groups != 2 || s.Slowest[0] != time.Second || s.Slowest[1] != 500*time.Millisecond {
		t.Errorf("groups %d slowest %v, want 2 groups, slowest 1s and 500ms", s.Groups, s.Slowest)
	}
	if len(s.HandOvers) != 1 || s.HandOvers[0] != 600*time.Millisecond {
		t.Errorf("hand-overs %v, want [600ms] (b Ready at 1.2 s, c and d closed at 1.8 s)", s.HandOvers)
	}
	text := strings.Join(s.lines(), "\n")
	for _, want := range []string{"4 pods updated in place", "0.10 s / 0.10 s", "slowest pod cycle is 0.75 s on average over 2 groups", "0.60 s on average (negative"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}
}

func TestBarrierLineSaysWhetherTheLimitLeavesAPodCyclePerGroup(t *testing.T) {
	s := &hopSummary{Groups: 10, Cycle: hopStats{P50: 2500 * time.Millisecond}}
	if l := s.barrierLine(20 * time.Second); !strings.Contains(l, "could meet it") || !strings.Contains(l, "25.0 s") {
		t.Errorf("2.0 s per group < 2.5 s cycle: %q", l)
	}
	if l := s.barrierLine(30 * time.Second); strings.Contains(l, "could meet it") || !strings.Contains(l, "stragglers") {
		t.Errorf("3.0 s per group > 2.5 s cycle: %q", l)
	}
	if l := (&hopSummary{Groups: 1}).barrierLine(time.Second); l != "" {
		t.Errorf("one group has no barrier: %q", l)
	}
}

func TestHopRecorderIgnoresPodsNotUpdatedInPlace(t *testing.T) {
	h := newHopRecorder(imageV2)
	// A replacement pod is created at v2: it never closed its gate at v1.
	h.observePod(time.Now(), stagedPod("new", 6))
	if s := h.summary(100); s != nil {
		t.Fatalf("summary = %+v, want none", s)
	}
}

// slice is an EndpointSlice listing the named pods ready.
func slice(name string, pods ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p},
		})
	}
	return s
}

func TestHopRecorderSplitsTheDrainWhereTheLastEndpointSliceDropsThePod(t *testing.T) {
	h := newHopRecorder(imageV2)
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// a is listed by two slices, b and c by one; every pod turns Ready
	// False at 200 ms and is patched at 300 ms.
	h.observeSlice(at(0), slice("s1", "a"), false)
	h.observeSlice(at(0), slice("s3", "a"), false)
	h.observeSlice(at(0), slice("s2", "b", "c"), false)
	for _, name := range []string{"a", "b", "c"} {
		for step := 0; step <= 6; step++ {
			h.observePod(at(100*step), stagedPod(name, step))
		}
	}
	// c's drop arrives on the slice watch before its Ready False on the pod
	// watch: at once. a is dropped only when the second slice, deleted,
	// stops listing it.
	h.observeSlice(at(180), slice("s2", "b"), false)
	h.observeSlice(at(250), slice("s1"), false)
	h.observeSlice(at(280), slice("s2"), false)
	h.observeSlice(at(300), slice("s3", "a"), true)

	s := h.summary(3)
	if s == nil || len(s.Steps) != 6 {
		t.Fatalf("summary = %+v, want 6 steps", s)
	}
	want := map[string]time.Duration{
		"Ready False → EndpointSlices dropped it": 80 * time.Millisecond, // 0, 80, 100 ms
		"dropped → image patched":                 20 * time.Millisecond, // 0, 20, 100 ms
	}
	for _, st := range s.Steps {
		if d, ok := want[st.Name]; ok {
			if st.P50 != d || st.N != 3 {
				t.Errorf("%s: p50 %s over %d pods, want %s over 3", st.Name, st.P50, st.N, d)
			}
			delete(want, st.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("steps %v missing from %+v", want, s.Steps)
	}
}
