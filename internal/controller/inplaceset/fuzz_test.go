package inplaceset

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/test/framework/crdcheck"
)

// FuzzPlanOnAdmittedSets builds InPlaceSets from the fuzzer's values, keeps
// those the CRD admits (crdcheck: the API server's schema and CEL
// validation, in-process), and plans them over fuzzed pods the way the
// reconciler does: never a panic, at most maxCreatesPerSync creates, never
// more than twice the replicas alive, and no write for more pods than
// exist. Seeds are in testdata/fuzz/FuzzPlanOnAdmittedSets.
func FuzzPlanOnAdmittedSets(f *testing.F) {
	v := crdcheck.MustFor(f, "InPlaceSet")
	f.Add(int32(3), int32(0), int32(1), uint8(0), int32(0), false, []byte{0xff, 0xff, 0x0f})
	f.Add(int32(100000), int32(40000), int32(0), uint8(25), int32(5), false, []byte{})
	f.Add(int32(2), int32(0), int32(1), uint8(0), int32(0), true, []byte{0x81, 0x81, 0x81, 0x81})
	f.Fuzz(func(t *testing.T, replicas, partition, maxUnavailable int32, percent uint8, minReady int32, paused bool, pods []byte) {
		set := fuzzedSet(replicas, maxUnavailable, percent, minReady)
		set.Spec.UpdateStrategy.Partition, set.Spec.UpdateStrategy.Paused = ptr.To(partition), paused
		in, admitted := admittedPlanInput(t, v, set, pods)
		if !admitted {
			return
		}
		out := plan(in)

		creates := out.CreateUpdated + out.CreateCurrent
		alive := 0
		for _, p := range in.Pods {
			if !p.Terminating {
				alive++
			}
		}
		if creates < 0 || creates > maxCreatesPerSync || (creates > 0 && alive+creates > 2*in.Replicas) {
			t.Fatalf("replicas %d, %d alive: creates %d", in.Replicas, alive, creates)
		}
		for name, n := range map[string]int{"CloseGate": len(out.CloseGate), "UpdateInPlace": len(out.UpdateInPlace), "Delete": len(out.Delete), "OpenGate": len(out.OpenGate)} {
			if n > len(in.Pods) {
				t.Fatalf("%s lists %d pods of %d", name, n, len(in.Pods))
			}
		}
	})
}

// fuzzedSet is an InPlaceSet of the fuzzer's size and update strategy,
// maxUnavailable a percentage when percent is set.
func fuzzedSet(replicas, maxUnavailable int32, percent uint8, minReady int32) *cafev1alpha1.InPlaceSet {
	set := &cafev1alpha1.InPlaceSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "InPlaceSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "fuzz"},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "fuzz"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "fuzz"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
			},
			UpdateStrategy: cafev1alpha1.InPlaceSetUpdateStrategy{
				MinReadySeconds: minReady, MaxUnavailable: ptr.To(intstr.FromInt32(maxUnavailable)),
			},
		},
	}
	if percent > 0 {
		set.Spec.UpdateStrategy.MaxUnavailable = ptr.To(intstr.FromString(fmt.Sprintf("%d%%", percent)))
	}
	return set
}

// admittedPlanInput is fuzzedPlanInput for the set as the CRD admits it
// (defaults applied), or false when the CRD refuses the set.
func admittedPlanInput(t *testing.T, v *crdcheck.Validator, set *cafev1alpha1.InPlaceSet, pods []byte) (planInput, bool) {
	t.Helper()
	admitted, refused, err := crdcheck.Admitted(context.Background(), v, set)
	if err != nil {
		t.Fatal(err)
	}
	if refused != nil {
		return planInput{}, false
	}
	return fuzzedPlanInput(t, admitted, pods), true
}

// fuzzedPlanInput is what gather would pass plan for set, with one pod per
// byte of pods (at most 256), each bit a fact about the pod.
func fuzzedPlanInput(t *testing.T, set *cafev1alpha1.InPlaceSet, pods []byte) planInput {
	replicas := int(ptr.Deref(set.Spec.Replicas, 1))
	maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(set.Spec.UpdateStrategy.MaxUnavailable, replicas, false)
	if err != nil {
		t.Fatalf("admitted maxUnavailable does not resolve: %v", err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := planInput{
		Replicas: replicas, Partition: int(ptr.Deref(set.Spec.UpdateStrategy.Partition, 0)), MaxUnavailable: maxUnavailable,
		MinReadySeconds: time.Duration(set.Spec.UpdateStrategy.MinReadySeconds) * time.Second, Paused: set.Spec.UpdateStrategy.Paused, Now: now,
	}
	for i, b := range pods[:min(len(pods), 256)] {
		bit := func(n uint) bool { return b&(1<<n) != 0 }
		st := podState{
			Pod:     &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fuzz-%d", i)}},
			Updated: bit(0), Terminating: bit(1), Ready: bit(2), ContainersReady: bit(2) || bit(3), GateOpen: bit(4),
			Drained: bit(5), InPlaceEligible: bit(6), MigrateRequested: bit(7), DeleteRequested: bit(3) && bit(6),
			ReadySince: now.Add(-time.Duration(b) * time.Second),
		}
		if !st.GateOpen {
			st.DrainReason = lossless.ReasonDrainForUpdate
			if bit(3) {
				st.DrainReason = lossless.ReasonDrainForDelete
			}
		}
		in.Pods = append(in.Pods, st)
	}
	return in
}

// FuzzPlanWithOwnEndpoints plans admitted sets that write their Service's
// endpoints (spec.endpoints) over fuzzed pods, a second byte per pod
// telling what the set's slices say of it, and checks what the drain by
// slice promises: no pod is updated in place unless drained, nor while
// the slices list it or in the plan that lists or drops it; no pod is both
// listed and dropped; and a plan that takes serving pods out of the
// Service leaves at least replicas − maxUnavailable available.
func FuzzPlanWithOwnEndpoints(f *testing.F) {
	v := crdcheck.MustFor(f, "InPlaceSet")
	f.Add(int32(4), int32(1), uint8(0), int32(0), []byte{0x44, 0x54, 0x55, 0x14}, []byte{0x01, 0x01, 0x02, 0x00})
	f.Add(int32(10), int32(0), uint8(30), int32(5), []byte{0x54, 0x54, 0x54, 0x54, 0x54, 0x75, 0x75}, []byte{0x01, 0x01, 0x01, 0x01, 0x05, 0x02, 0x00})
	f.Add(int32(3), int32(3), uint8(0), int32(0), []byte{0x75, 0x75, 0x75}, []byte{0x02, 0x02, 0x02})
	f.Fuzz(func(t *testing.T, replicas, maxUnavailable int32, percent uint8, minReady int32, pods, sliceFacts []byte) {
		set := fuzzedSet(replicas, maxUnavailable, percent, minReady)
		set.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: "web"}
		in, admitted := admittedPlanInput(t, v, set, pods)
		if !admitted {
			return
		}
		in.OwnEndpoints = true
		for i := range in.Pods {
			var b byte
			if i < len(sliceFacts) {
				b = sliceFacts[i]
			}
			p := &in.Pods[i]
			p.Listed, p.Dropped, p.TrafficGuarded = b&1 != 0, b&1 == 0 && b&2 != 0, b&4 != 0
			if p.Listed {
				// The set's own slices list it ready: not drained.
				p.Drained = false
			}
		}
		out := plan(in)
		checkDrainBySlice(t, in, out)
	})
}

func checkDrainBySlice(t *testing.T, in planInput, out planResult) {
	t.Helper()
	state := map[*corev1.Pod]podState{}
	for _, p := range in.Pods {
		state[p.Pod] = p
	}
	listed, unlisted := map[*corev1.Pod]bool{}, map[*corev1.Pod]bool{}
	for _, pod := range out.List {
		listed[pod] = true
	}
	for _, pod := range out.Unlist {
		unlisted[pod] = true
		if listed[pod] {
			t.Fatalf("pod %s is both listed and dropped", pod.Name)
		}
	}
	for _, pod := range out.UpdateInPlace {
		p := state[pod]
		if !p.Drained || p.Listed || listed[pod] || unlisted[pod] {
			t.Fatalf("pod %s updated in place while still reachable: drained %v, listed %v, listed now %v, dropped now %v", pod.Name, p.Drained, p.Listed, listed[pod], unlisted[pod])
		}
	}

	// The budget, where every pod is one of the replicas (no surplus,
	// deletion, migration), as plan's unavailable counts them.
	if len(in.Pods) > in.Replicas || slices.ContainsFunc(in.Pods, func(p podState) bool { return p.Terminating || p.MigrateRequested || p.DeleteRequested }) {
		return
	}
	closed := map[*corev1.Pod]bool{}
	for _, g := range out.CloseGate {
		closed[g.Pod] = true
	}
	takenAway, left := 0, 0
	for _, p := range in.Pods {
		if !in.available(p) || p.DrainReason != "" {
			continue
		}
		if unlisted[p.Pod] || closed[p.Pod] {
			takenAway++
		} else {
			left++
		}
	}
	if takenAway > 0 && left < in.Replicas-in.MaxUnavailable {
		t.Fatalf("the plan takes %d available pods away and leaves %d available, below replicas %d − maxUnavailable %d", takenAway, left, in.Replicas, in.MaxUnavailable)
	}
}
