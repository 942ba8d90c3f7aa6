package lossless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/podutil"
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
//
// The same patch carries the Ready condition the kubelet would compute from
// it (ReadyFollowingGate), so the EndpointSlice controller acts on the gate
// without waiting for the kubelet's round trip: one write and one hop less
// per pod and direction.
func SetGate(ctx context.Context, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus, reason, message string) error {
	_, err := SetGateVersion(ctx, c, pod, status, reason, message)
	return err
}

// SetGateVersion is SetGate that also returns the pod's resourceVersion
// after the write, for a controller that must not decide from a cache
// older than its own write (internal/ownwrites).
//
// Every write names the pod's UID: a StatefulSet recreates a pod under the
// same name, and a decision about the old pod must not land on the new one
// (such a write fails with NotFound). Opening the gate is written only on
// the pod's resourceVersion as read: an open decided from a read that an
// operation's close (or a drain request) has overtaken must fail with a
// conflict and be decided again, or it would undo a drain under way.
// Closing needs no such guard: it is safe on any version of the pod.
func SetGateVersion(ctx context.Context, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus, reason, message string) (string, error) {
	now := metav1.Now()
	gate := corev1.PodCondition{Type: cafev1alpha1.TrafficReadyCondition, Status: status, Reason: reason, Message: message, LastTransitionTime: now}
	if old := Gate(pod); old != nil && old.Status == status {
		gate.LastTransitionTime = old.LastTransitionTime
	}
	ready, withReady := ReadyFollowingGate(pod, status, now)
	rv, err := patchConditions(ctx, c, pod, gate, ready, withReady)
	if err != nil {
		return "", fmt.Errorf("setting %s=%s (%s) on pod %s: %w", cafev1alpha1.TrafficReadyCondition, status, reason, client.ObjectKeyFromObject(pod), err)
	}
	return rv, nil
}

// patchConditions writes the gate, and Ready with it when withReady, in one
// strategic-merge patch of the pod's status, on the pod's UID, and when the
// gate opens on its resourceVersion as read (SetGateVersion says why; it
// also keeps a container that turned unready since from being hidden by
// the Ready True written with it).
func patchConditions(ctx context.Context, c client.Client, pod *corev1.Pod, gate, ready corev1.PodCondition, withReady bool) (string, error) {
	conditions := []any{gate}
	if withReady {
		conditions = append(conditions, readyPatch(ready))
	}
	meta := map[string]any{}
	if pod.UID != "" {
		meta["uid"] = pod.UID
	}
	if gate.Status == corev1.ConditionTrue && pod.ResourceVersion != "" {
		meta["resourceVersion"] = pod.ResourceVersion
	}
	body, err := json.Marshal(map[string]any{"metadata": meta, "status": map[string]any{"conditions": conditions}})
	if err != nil {
		return "", err
	}
	target := podutil.WriteTarget(pod)
	err = c.Status().Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, body))
	if isUIDMismatch(err) {
		return "", apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
	}
	if err != nil {
		return "", err
	}
	return target.ResourceVersion, nil
}

// isUIDMismatch: the API server refuses a patch whose metadata.uid is not
// the object's as an invalid change of an immutable field. For a patch that
// names the UID it read, that means the pod it read is gone.
func isUIDMismatch(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// readyPatch is a Ready condition as a strategic-merge patch entry: an empty
// reason or message is sent as null, which removes the False condition's.
func readyPatch(c corev1.PodCondition) map[string]any {
	entry := map[string]any{"type": c.Type, "status": c.Status, "lastTransitionTime": c.LastTransitionTime, "reason": nil, "message": nil}
	if c.Reason != "" {
		entry["reason"], entry["message"] = c.Reason, c.Message
	}
	return entry
}

// Reason and message of a Ready condition held False by a readiness gate,
// as the kubelet writes them.
const (
	readinessGatesNotReady        = "ReadinessGatesNotReady"
	readinessGatesNotReadyMessage = `the status of pod readiness gates is not "True"`
)

// ReadyFollowingGate returns the Ready condition the kubelet computes for
// the pod once its traffic-ready gate is set to status (Ready = every
// container ready and every readiness gate True), and whether it differs
// from the pod's current one. Closing the gate always makes Ready False.
// Opening it makes Ready True only when everything else is already so:
// every container of the spec reports ready, ContainersReady is not False
// and every other readiness gate is True; otherwise the kubelet decides.
func ReadyFollowingGate(pod *corev1.Pod, gate corev1.ConditionStatus, now metav1.Time) (corev1.PodCondition, bool) {
	current := corev1.ConditionUnknown
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			current = c.Status
		}
	}
	switch {
	case gate == corev1.ConditionFalse && current != corev1.ConditionFalse:
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: readinessGatesNotReady, Message: readinessGatesNotReadyMessage, LastTransitionTime: now}, true
	case gate == corev1.ConditionTrue && current != corev1.ConditionTrue && readyButForGate(pod):
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}, true
	}
	return corev1.PodCondition{}, false
}

// readyButForGate: every container of the spec reports ready, the pod's
// ContainersReady condition is not False, and every readiness gate but
// traffic-ready is True.
func readyButForGate(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning || len(pod.Spec.Containers) == 0 || pod.ResourceVersion == "" {
		return false
	}
	ready := map[string]bool{}
	for _, s := range pod.Status.ContainerStatuses {
		ready[s.Name] = s.Ready
	}
	for _, c := range pod.Spec.Containers {
		if !ready[c.Name] {
			return false
		}
	}
	conditions := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range pod.Status.Conditions {
		conditions[c.Type] = c.Status
	}
	if conditions[corev1.ContainersReady] == corev1.ConditionFalse {
		return false
	}
	for _, g := range pod.Spec.ReadinessGates {
		if g.ConditionType != cafev1alpha1.TrafficReadyCondition && conditions[g.ConditionType] != corev1.ConditionTrue {
			return false
		}
	}
	return true
}
