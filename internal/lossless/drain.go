package lossless

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// TrafficHolders lists, in words, everything that still routes traffic to
// the pod: its own Ready condition while still True (EndpointSlices follow
// it, so a slice that dropped the pod would list it again), EndpointSlices
// that list it ready or serving, and traffic providers whose finalizer is
// on it. The pod may be operated on only when the list is empty (and its
// gate is closed).
func TrafficHolders(pod *corev1.Pod, slices []discoveryv1.EndpointSlice) []string {
	var holders []string
	if readyTrue(pod) {
		// Seen with kwok after a drain was cancelled and begun again: the
		// kubelet's Ready=True for the reopened gate arrived after the gate
		// closed again, while the slices still showed the pod not ready.
		holders = append(holders, "its Ready condition is still True (the kubelet has not yet seen the gate closed)")
	}
	return append(holders, ListedHolders(pod, slices)...)
}

// ListedHolders is TrafficHolders without the pod's Ready condition: what
// routes to a pod whose endpoints its readiness does not decide (a pod set
// that writes its Service's EndpointSlices drains a pod by dropping it
// from them, and the pod stays Ready).
func ListedHolders(pod *corev1.Pod, slices []discoveryv1.EndpointSlice) []string {
	var holders []string
	for i := range slices {
		if sliceHolds(&slices[i], pod) {
			holders = append(holders, fmt.Sprintf("EndpointSlice %s lists it ready or serving", slices[i].Name))
		}
	}
	var finalizers []string
	for _, f := range pod.Finalizers {
		if cafev1alpha1.IsTrafficFinalizer(f) {
			finalizers = append(finalizers, f)
		}
	}
	sort.Strings(finalizers)
	for _, f := range finalizers {
		holders = append(holders, "traffic provider finalizer "+f)
	}
	return holders
}

// Drained reports whether the pod's gate is closed and nothing routes
// traffic to it any more.
func Drained(pod *corev1.Pod, slices []discoveryv1.EndpointSlice) bool {
	g := Gate(pod)
	return g != nil && g.Status == corev1.ConditionFalse && len(TrafficHolders(pod, slices)) == 0
}

// heldBySlices: one of the slices lists the pod ready or serving.
func heldBySlices(pod *corev1.Pod, slices []discoveryv1.EndpointSlice) bool {
	for i := range slices {
		if sliceHolds(&slices[i], pod) {
			return true
		}
	}
	return false
}

// sliceHolds: the slice lists the pod ready or serving.
func sliceHolds(slice *discoveryv1.EndpointSlice, pod *corev1.Pod) bool {
	for _, ep := range slice.Endpoints {
		if refersTo(ep, pod) && (nilOrTrue(ep.Conditions.Ready) || nilOrTrue(ep.Conditions.Serving)) {
			return true
		}
	}
	return false
}

func readyTrue(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func refersTo(ep discoveryv1.Endpoint, pod *corev1.Pod) bool {
	ref := ep.TargetRef
	if ref == nil || ref.Kind != "Pod" || ref.Name != pod.Name {
		return false
	}
	return ref.UID == "" || ref.UID == pod.UID
}

// nilOrTrue reads an optional EndpointSlice condition: the API says a nil
// ready or serving is to be taken as true, as kube-proxy does.
func nilOrTrue(b *bool) bool {
	return b == nil || *b
}

// DeleteDrained deletes the pod exactly as it was judged drained: on its
// UID (never a recreated pod of the same name) and its resourceVersion. A
// write since the read — a kubelet turning Ready True again from a stale
// view of the gate, a provider's finalizer put back — makes the delete fail
// with a conflict, and the next reconcile judges the pod again. The
// in-place update patch carries the same resourceVersion for that reason.
func DeleteDrained(ctx context.Context, c client.Writer, pod *corev1.Pod) error {
	return c.Delete(ctx, pod, client.Preconditions{UID: &pod.UID, ResourceVersion: &pod.ResourceVersion})
}
