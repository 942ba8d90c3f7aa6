package trafficprovider

import (
	corev1 "k8s.io/api/core/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// podKind: only pods that list CAFE's readiness gate cafe.io/traffic-ready
// are guarded; the gate is that condition.
var podKind = kind[*corev1.Pod]{
	kind: "Pod", noun: "pod", metrics: podMetrics,
	newObject:  func() *corev1.Pod { return &corev1.Pod{} },
	guarded:    func(pod *corev1.Pod) bool { return lossless.HasGate(&pod.Spec) },
	gateOpen:   lossless.GateOpen,
	gateClosed: func(*corev1.Pod) string { return "its traffic-ready gate is closed" },
}

// instanceKind: every ClassicInstance has a traffic gate (spec.trafficGate,
// open by default), so all are guarded. Besides the common inputs, the
// address the provider's RoutesInstance asks about (status.address, and
// the port behind the host's address) wakes the controller; the agent's
// other status reports do not.
var instanceKind = kind[*cafev1alpha1.ClassicInstance]{
	kind: "ClassicInstance", noun: "instance", metrics: instanceMetrics,
	newObject: func() *cafev1alpha1.ClassicInstance { return &cafev1alpha1.ClassicInstance{} },
	guarded:   func(*cafev1alpha1.ClassicInstance) bool { return true },
	gateOpen:  (*cafev1alpha1.ClassicInstance).GateOpen,
	gateClosed: func(inst *cafev1alpha1.ClassicInstance) string {
		return "its traffic gate is closed (" + string(inst.Spec.TrafficGate) + ")"
	},
	moreInputsChanged: func(old, inst *cafev1alpha1.ClassicInstance) bool {
		return old.Status.Address != inst.Status.Address || old.Spec.Artifact.Port != inst.Spec.Artifact.Port
	},
}
