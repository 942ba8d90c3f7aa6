package lossless

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func drainingPod(status corev1.ConditionStatus, reason string, since time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1"},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: cafev1alpha1.TrafficReadyCondition, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(since),
		}}},
	}
}

func TestHeldDrain(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	holders := []string{"traffic provider finalizer traffic.cafe.io/gateway"}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		holders  []string
		wantHeld string
		wantWait time.Duration
	}{
		{"a young drain is not reported yet; ask again when it would be", drainingPod(corev1.ConditionFalse, ReasonDrainForUpdate, now.Add(-2*time.Second)), holders, "", 3 * time.Second},
		{"a drain held longer than SlowDrain names the pod, the start and the holder", drainingPod(corev1.ConditionFalse, ReasonDrainForUpdate, now.Add(-time.Minute)), holders,
			"pod web-1 has been draining since 2026-12-04T11:59:00Z and is still held by: traffic provider finalizer traffic.cafe.io/gateway", 0},
		{"a drain for deletion counts too", drainingPod(corev1.ConditionFalse, ReasonDrainForDelete, now.Add(-time.Minute)), holders, "pod web-1 has been draining since 2026-12-04T11:59:00Z and is still held by: traffic provider finalizer traffic.cafe.io/gateway", 0},
		{"nothing holds it: never reported", drainingPod(corev1.ConditionFalse, ReasonDrainForUpdate, now.Add(-time.Minute)), nil, "", 0},
		{"an open gate is no drain", drainingPod(corev1.ConditionTrue, ReasonDrainForUpdate, now.Add(-time.Minute)), holders, "", 0},
		{"a gate closed for another reason is no drain", drainingPod(corev1.ConditionFalse, "NotReadyYet", now.Add(-time.Minute)), holders, "", 0},
		{"no gate", &corev1.Pod{}, holders, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			held, wait := HeldDrain(tt.pod, tt.holders, now)
			g.Expect(held).To(Equal(tt.wantHeld))
			g.Expect(wait).To(Equal(tt.wantWait))
		})
	}
}
