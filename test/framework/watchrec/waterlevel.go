package watchrec

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// CheckWaterLevel returns a violation each time the number of available pods falls
// below minReady. A pod is available when its labels match selector (nil matches every
// pod), it has the condition Ready=True, and its deletion has not begun.
//
// Warm-up: the level is only enforced after the first event at which at least minReady
// pods are available. Before that the workload is being created or scaled up, and being
// below the level is expected, not a violation. A workload that never reaches the level
// is never reported; assert its readiness separately (for example with [ReadyPods]).
//
// Each dip is reported once, at the event that took the count below the level; the
// count must climb back to minReady before another dip is reported. Every Gap is a
// violation, because the events it lost cannot be checked. A minReady of zero or less
// cannot be broken.
//
// The count is taken after every pod event, in resource-version order. Two writes are
// never simultaneous in this order, so a surge (the new pod Ready before the old one
// leaves) is never mistaken for a dip, and a swap in the other order always is one.
func CheckWaterLevel(events []Event, selector labels.Selector, minReady int) []Violation {
	if selector == nil {
		selector = labels.Everything()
	}
	var out []Violation
	available := map[string]bool{}
	for _, ev := range sorted(events) {
		if ev.Type == Gap {
			out = append(out, gapViolation(CheckNameWaterLevel, ev))
			continue
		}
		if ev.Pod == nil {
			continue
		}
		pod := ev.Pod
		key := objectKey(pod.Namespace, pod.Name)
		before := len(available)
		was := available[key]
		now := ev.Type != Deleted && !ev.LeftFilter && isAvailable(pod, selector)
		if now {
			available[key] = true
		} else {
			delete(available, key)
		}
		after := len(available)
		// Only a fall from the level is a dip, which leaves the warm-up (the count
		// climbing to the level for the first time) alone without further state.
		if before >= minReady && after < minReady {
			out = append(out, Violation{
				Check:           CheckNameWaterLevel,
				Pod:             pod.Name,
				Seq:             ev.Seq,
				ResourceVersion: ev.ResourceVersion,
				Reason: fmt.Sprintf("available pods matching %q fell to %d, below the water level %d, when the pod %s",
					selector.String(), after, minReady, unavailableBecause(ev, pod, selector, was)),
			})
		}
	}
	return out
}

// ReadyPods returns the names of the pods available at the end of the log (see
// [CheckWaterLevel]), sorted.
func ReadyPods(events []Event, selector labels.Selector) []string {
	if selector == nil {
		selector = labels.Everything()
	}
	pods := map[string]*corev1.Pod{}
	for _, ev := range sorted(events) {
		if ev.Pod == nil {
			continue
		}
		key := objectKey(ev.Pod.Namespace, ev.Pod.Name)
		if ev.Type == Deleted || ev.LeftFilter {
			delete(pods, key)
		} else {
			pods[key] = ev.Pod
		}
	}
	var names []string
	for _, key := range slices.Sorted(maps.Keys(pods)) {
		if isAvailable(pods[key], selector) {
			names = append(names, pods[key].Name)
		}
	}
	return names
}

// isAvailable is the water level's notion of a pod that counts.
func isAvailable(pod *corev1.Pod, selector labels.Selector) bool {
	return selector.Matches(labels.Set(pod.Labels)) && pod.DeletionTimestamp == nil && isPodReady(pod)
}

// unavailableBecause says why the pod stopped counting.
func unavailableBecause(ev Event, pod *corev1.Pod, selector labels.Selector, was bool) string {
	switch {
	case !was:
		return fmt.Sprintf("%q changed (it was not counted)", pod.Name)
	case ev.Type == Deleted:
		return fmt.Sprintf("%q was deleted", pod.Name)
	case ev.LeftFilter:
		return fmt.Sprintf("%q left the recorder's label selector", pod.Name)
	case pod.DeletionTimestamp != nil:
		return fmt.Sprintf("%q began deletion", pod.Name)
	case !selector.Matches(labels.Set(pod.Labels)):
		return fmt.Sprintf("%q stopped matching the selector", pod.Name)
	default:
		return fmt.Sprintf("%q lost Ready=True", pod.Name)
	}
}
