package lossless

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Reasons of the traffic-ready condition. False reasons say which operation
// the drain is for, so a restarted controller knows what to finish.
const (
	// ReasonServing: the pod may receive traffic.
	ReasonServing = "Serving"
	// ReasonDrainForUpdate: the pod is drained to be updated (in place or by
	// recreation).
	ReasonDrainForUpdate = "DrainForUpdate"
	// ReasonDrainForDelete: the pod is drained to be deleted (scale-in,
	// migration, a requested deletion).
	ReasonDrainForDelete = "DrainForDelete"
)

// GateChange is a planned closing of a pod's gate: step 1 of the protocol,
// with the reason that says which operation the drain is for.
type GateChange struct {
	Pod    *corev1.Pod
	Reason string
}

// Gate returns the pod's traffic-ready condition, or nil if it has none yet.
func Gate(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == cafev1alpha1.TrafficReadyCondition {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// GateOpen reports whether the pod's traffic-ready condition is True.
func GateOpen(pod *corev1.Pod) bool {
	g := Gate(pod)
	return g != nil && g.Status == corev1.ConditionTrue
}

// DrainReason returns the operation a pod is being drained for ("" when its
// gate is not closed for an operation).
func DrainReason(pod *corev1.Pod) string {
	g := Gate(pod)
	if g == nil || g.Status != corev1.ConditionFalse {
		return ""
	}
	switch g.Reason {
	case ReasonDrainForUpdate, ReasonDrainForDelete:
		return g.Reason
	}
	return ""
}

// HasGate reports whether the pod lists the traffic-ready readiness gate.
func HasGate(spec *corev1.PodSpec) bool {
	for _, g := range spec.ReadinessGates {
		if g.ConditionType == cafev1alpha1.TrafficReadyCondition {
			return true
		}
	}
	return false
}

// EnsureGate adds the traffic-ready readiness gate to a pod spec.
func EnsureGate(spec *corev1.PodSpec) {
	if !HasGate(spec) {
		spec.ReadinessGates = append(spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: cafev1alpha1.TrafficReadyCondition})
	}
}

// SetGate writes the traffic-ready condition with one strategic-merge patch
// of the pod's status (conditions merge by type, so other conditions are
// untouched). The transition time moves only when the status changes.
func SetGate(ctx context.Context, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus, reason, message string) error {
	_, err := SetGateVersion(ctx, c, pod, status, reason, message)
	return err
}

// SetGateVersion is SetGate that also returns the pod's resourceVersion
// after the write, for a controller that must not decide from a cache
// older than its own write (internal/ownwrites).
func SetGateVersion(ctx context.Context, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus, reason, message string) (string, error) {
	now := metav1.Now()
	cond := corev1.PodCondition{Type: cafev1alpha1.TrafficReadyCondition, Status: status, Reason: reason, Message: message, LastTransitionTime: now}
	if old := Gate(pod); old != nil && old.Status == status {
		cond.LastTransitionTime = old.LastTransitionTime
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{cond}}})
	if err != nil {
		return "", err
	}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	if err := c.Status().Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return "", fmt.Errorf("setting %s=%s (%s) on pod %s: %w", cafev1alpha1.TrafficReadyCondition, status, reason, client.ObjectKeyFromObject(pod), err)
	}
	return target.ResourceVersion, nil
}
