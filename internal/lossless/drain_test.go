package lossless

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func gatedPod(status corev1.ConditionStatus, finalizers ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "uid-1", Finalizers: finalizers},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: cafev1alpha1.TrafficReadyCondition, Status: status, Reason: ReasonDrainForUpdate},
		}},
	}
}

func readyPod(p *corev1.Pod) *corev1.Pod {
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	return p
}

func slice(name string, ready, serving *bool, uid string) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Endpoints: []discoveryv1.Endpoint{{
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "p", UID: "uid-1"},
			Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving},
		}, {
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "other"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
	}
}

func TestDrainedDecidesFromSlicesFinalizersAndGate(t *testing.T) {
	no, yes := ptr.To(false), ptr.To(true)
	tests := []struct {
		name    string
		pod     *corev1.Pod
		slices  []discoveryv1.EndpointSlice
		drained bool
		holders int
	}{
		{"a closed gate with no slice and no finalizer is drained", gatedPod(corev1.ConditionFalse), nil, true, 0},
		{"a slice listing the pod not ready and not serving lets it go", gatedPod(corev1.ConditionFalse), []discoveryv1.EndpointSlice{slice("s1", no, no, "")}, true, 0},
		{"a slice listing the pod ready holds it", gatedPod(corev1.ConditionFalse), []discoveryv1.EndpointSlice{slice("s1", yes, yes, "")}, false, 1},
		{"a slice listing the pod serving (terminating) holds it", gatedPod(corev1.ConditionFalse), []discoveryv1.EndpointSlice{slice("s1", no, yes, "")}, false, 1},
		{"a nil ready condition means ready", gatedPod(corev1.ConditionFalse), []discoveryv1.EndpointSlice{slice("s1", nil, no, "")}, false, 1},
		{"a provider finalizer holds the pod", gatedPod(corev1.ConditionFalse, "traffic.cafe.io/registry", "other.io/keep"), nil, false, 1},
		{"an open gate is never drained", gatedPod(corev1.ConditionTrue), nil, false, 0},
		{"a pod still Ready is held though no slice lists it ready", readyPod(gatedPod(corev1.ConditionFalse)), []discoveryv1.EndpointSlice{slice("s1", no, no, "")}, false, 1},
		{"every holder is listed", gatedPod(corev1.ConditionFalse, "traffic.cafe.io/lb", "traffic.cafe.io/mesh"), []discoveryv1.EndpointSlice{slice("s1", yes, yes, ""), slice("s2", yes, yes, "")}, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Drained(tt.pod, tt.slices)).To(Equal(tt.drained))
			g.Expect(TrafficHolders(tt.pod, tt.slices)).To(HaveLen(tt.holders))
		})
	}
}

func TestAnEndpointOfAnEarlierPodWithTheSameNameDoesNotHoldIt(t *testing.T) {
	g := NewWithT(t)
	s := slice("s1", ptr.To(true), ptr.To(true), "")
	s.Endpoints[0].TargetRef.UID = "uid-of-a-previous-incarnation"
	g.Expect(TrafficHolders(gatedPod(corev1.ConditionFalse), []discoveryv1.EndpointSlice{s})).To(BeEmpty())
}

func TestDrainReasonOnlyForAClosedGateWithAnOperation(t *testing.T) {
	g := NewWithT(t)
	g.Expect(DrainReason(gatedPod(corev1.ConditionFalse))).To(Equal(ReasonDrainForUpdate))
	g.Expect(DrainReason(gatedPod(corev1.ConditionTrue))).To(BeEmpty())
	g.Expect(DrainReason(&corev1.Pod{})).To(BeEmpty())
	p := gatedPod(corev1.ConditionFalse)
	p.Status.Conditions[0].Reason = "Starting"
	g.Expect(DrainReason(p)).To(BeEmpty())
}

func TestIndexListsEveryTargetedPod(t *testing.T) {
	g := NewWithT(t)
	s := slice("s1", nil, nil, "")
	g.Expect(IndexEndpointSlicesByPod(&s)).To(ConsistOf("p", "other"))
	g.Expect(IndexEndpointSlicesByPod(&corev1.Pod{})).To(BeEmpty())
}
