package watchrec

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// objectKey identifies an object of one kind by namespace and name.
func objectKey(namespace, name string) string {
	return namespace + "/" + name
}

// sameIncarnation reports whether two versions of a pod name are the same pod, not a
// pod recreated under the same name (StatefulSet style). Synthetic test streams may
// leave UIDs empty, which counts as the same pod.
func sameIncarnation(a, b *corev1.Pod) bool {
	return a.UID == "" || b.UID == "" || a.UID == b.UID
}

// specChange returns "" when cur has the same spec as prev, and otherwise a short
// description of the change. The scheduler's binding (spec.nodeName set on a pod that
// had none) is not an operation on a serving pod and is ignored.
func specChange(prev, cur *corev1.Pod) string {
	prevSpec := prev.Spec
	if prevSpec.NodeName == "" {
		prevSpec.NodeName = cur.Spec.NodeName
	}
	if equality.Semantic.DeepEqual(prevSpec, cur.Spec) {
		return ""
	}
	var parts []string
	parts = append(parts, imageChanges("container", prevSpec.Containers, cur.Spec.Containers)...)
	parts = append(parts, imageChanges("init container", prevSpec.InitContainers, cur.Spec.InitContainers)...)
	if fields := changedSpecFields(&prevSpec, &cur.Spec); len(fields) > 0 {
		parts = append(parts, "changed fields: "+strings.Join(fields, ", "))
	}
	if len(parts) == 0 {
		return "spec changed"
	}
	return strings.Join(parts, "; ")
}

// imageChanges describes the image changes between two container lists, by name.
func imageChanges(what string, prev, cur []corev1.Container) []string {
	var out []string
	for _, c := range cur {
		for _, p := range prev {
			if p.Name == c.Name && p.Image != c.Image {
				out = append(out, fmt.Sprintf("%s %q image %q -> %q", what, c.Name, p.Image, c.Image))
			}
		}
	}
	return out
}

// changedSpecFields lists the top-level spec fields that differ, as JSON paths.
func changedSpecFields(prev, cur *corev1.PodSpec) []string {
	a, errA := toMap(prev)
	b, errB := toMap(cur)
	if errA != nil || errB != nil {
		return nil
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, "spec."+k)
		}
	}
	return out
}

func toMap(spec *corev1.PodSpec) (map[string]any, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

// isPodReady reports whether the pod has the condition Ready=True.
func isPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodHistory returns the events of the pods named name, in stream order. It includes
// every incarnation of the name (a pod deleted and recreated under the same name) and
// no Gap events; use [Gaps] for those.
func PodHistory(events []Event, name string) []Event {
	var out []Event
	for _, ev := range sorted(events) {
		if ev.Pod != nil && ev.Pod.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

// CountPodSpecChanges counts how many times the spec of the pod named name changed
// between consecutive recorded versions of the same incarnation (same UID), with the
// same rules as [CheckLossless]: the scheduler's binding does not count, and a pod
// recreated under the same name starts a new history. An in-place update of one
// container image is one change; a delete-and-recreate is none.
func CountPodSpecChanges(events []Event, name string) int {
	n := 0
	var prev *corev1.Pod
	for _, ev := range PodHistory(events, name) {
		cur := ev.Pod
		if prev != nil && ev.Type != Deleted && sameIncarnation(prev, cur) && specChange(prev, cur) != "" {
			n++
		}
		prev = cur
		if ev.Type == Deleted || ev.LeftFilter {
			prev = nil
		}
	}
	return n
}
