package trafficprovider

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Only what the decision reads wakes the controller: not the kubelet's
// status reports.
func TestDecisionInputsChanged(t *testing.T) {
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
			if got := decisionInputsChanged(base(), pod, fin); got != tt.want {
				t.Fatalf("decisionInputsChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
