package trafficprovider

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Only what the decision reads wakes the controller: not the kubelet's
// status reports.
func TestPodDecisionInputsChanged(t *testing.T) {
	const fin = "traffic.cafe.io/test"
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
				{Type: cafev1alpha1.TrafficReadyCondition, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			}},
		}
	}
	tests := []struct {
		name   string
		change func(*corev1.Pod)
		want   bool
	}{
		{"a kubelet status report", func(p *corev1.Pod) {
			p.Status.Conditions[1].Status = corev1.ConditionFalse
			p.Status.PodIP = "10.0.0.1"
		}, false},
		{"another finalizer", func(p *corev1.Pod) { p.Finalizers = []string{"example.com/other"} }, false},
		{"the gate closed", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }, true},
		{"a label changed", func(p *corev1.Pod) { p.Labels["track"] = "canary" }, true},
		{"the deletion began", func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }, true},
		{"the provider's finalizer added", func(p *corev1.Pod) { p.Finalizers = []string{fin} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := base()
			tt.change(pod)
			if got := podKind.inputsChanged(base(), pod, fin); got != tt.want {
				t.Fatalf("inputsChanged = %v, want %v", got, tt.want)
			}
		})
	}
}

// The same for classic instances: the agent's status reports do not wake
// the controller, except a new address (RoutesInstance asks about it).
func TestInstanceDecisionInputsChanged(t *testing.T) {
	const fin = "traffic.cafe.io/test"
	base := func() *cafev1alpha1.ClassicInstance {
		return &cafev1alpha1.ClassicInstance{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec: cafev1alpha1.ClassicInstanceSpec{HostName: "vm-1", TrafficGate: cafev1alpha1.ClassicTrafficGateOpen,
				Artifact: cafev1alpha1.ClassicArtifact{Port: 8080, SHA256: "a"}},
			Status: cafev1alpha1.ClassicInstanceStatus{Address: "10.0.0.1:8080", Phase: cafev1alpha1.ClassicInstanceRunning},
		}
	}
	tests := []struct {
		name   string
		change func(*cafev1alpha1.ClassicInstance)
		want   bool
	}{
		{"an agent status report", func(i *cafev1alpha1.ClassicInstance) {
			i.Status.Phase = cafev1alpha1.ClassicInstanceStarting
			i.Status.Restarts = 2
		}, false},
		{"another package", func(i *cafev1alpha1.ClassicInstance) { i.Spec.Artifact.SHA256 = "b" }, false},
		{"the gate unset (open by default)", func(i *cafev1alpha1.ClassicInstance) { i.Spec.TrafficGate = "" }, false},
		{"another finalizer", func(i *cafev1alpha1.ClassicInstance) { i.Finalizers = []string{"example.com/other"} }, false},
		{"the gate closed", func(i *cafev1alpha1.ClassicInstance) {
			i.Spec.TrafficGate = cafev1alpha1.ClassicTrafficGateDrainForDelete
		}, true},
		{"a label changed", func(i *cafev1alpha1.ClassicInstance) { i.Labels["track"] = "canary" }, true},
		{"the deletion began", func(i *cafev1alpha1.ClassicInstance) { now := metav1.Now(); i.DeletionTimestamp = &now }, true},
		{"the provider's finalizer added", func(i *cafev1alpha1.ClassicInstance) { i.Finalizers = []string{fin} }, true},
		{"a new address", func(i *cafev1alpha1.ClassicInstance) { i.Status.Address = "10.0.0.2:8080" }, true},
		{"a new port", func(i *cafev1alpha1.ClassicInstance) { i.Spec.Artifact.Port = 9090 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := base()
			tt.change(inst)
			if got := instanceKind.inputsChanged(base(), inst, fin); got != tt.want {
				t.Fatalf("inputsChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
