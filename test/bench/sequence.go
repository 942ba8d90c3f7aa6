package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// podWrite is one write to a pod as the API server's watch stream shows it:
// who made it (the field managers whose managedFields entry the write
// changed) and what it changed.
type podWrite struct {
	Writers []string
	Changes []string
}

// podSequence is the writes to one pod during a release.
type podSequence struct {
	Pod    string
	Writes []podWrite
}

// releasedPodSequence is the writes to one released pod in the stream: the
// first pod whose image changed in place or, for a workload that replaces
// pods, the first whose deletion began. Its name is "" when no pod was
// either.
func releasedPodSequence(events []watchrec.Event, image string) (string, []podWrite) {
	events = slices.Clone(events)
	watchrec.SortEvents(events)
	name := firstReleasedPod(events, image)
	if name == "" {
		return "", nil
	}
	var out []podWrite
	var prev *corev1.Pod
	for _, ev := range watchrec.PodHistory(events, name) {
		cur := ev.Pod
		if ev.Synthetic || prev == nil || prev.UID != cur.UID {
			prev = cur
			continue
		}
		if ev.Type == watchrec.Deleted {
			out = append(out, podWrite{Writers: []string{"(deleted)"}, Changes: []string{"the pod object is removed"}})
			break
		}
		out = append(out, podWrite{Writers: changedManagers(prev, cur), Changes: podChanges(prev, cur)})
		prev = cur
	}
	return name, out
}

// firstReleasedPod is the first pod, in stream order, whose app container
// changed to image in place or whose deletion began.
func firstReleasedPod(events []watchrec.Event, image string) string {
	last := map[string]*corev1.Pod{}
	for _, ev := range events {
		cur := ev.Pod
		if cur == nil {
			continue
		}
		prev := last[cur.Name]
		last[cur.Name] = cur
		if ev.Synthetic || prev == nil || prev.UID != cur.UID {
			continue
		}
		if containerImage(prev) != image && containerImage(cur) == image || prev.DeletionTimestamp == nil && cur.DeletionTimestamp != nil {
			return cur.Name
		}
	}
	return ""
}

func containerImage(p *corev1.Pod) string {
	if len(p.Spec.Containers) == 0 {
		return ""
	}
	return p.Spec.Containers[0].Image
}

// changedManagers are the field managers whose managedFields entry differs
// between the two versions: the writer of cur (several when the API server
// merged a manager's fields into another's).
func changedManagers(prev, cur *corev1.Pod) []string {
	before := map[string]metav1.ManagedFieldsEntry{}
	for _, e := range prev.ManagedFields {
		before[managerKey(e)] = e
	}
	var out []string
	for _, e := range cur.ManagedFields {
		b, ok := before[managerKey(e)]
		if !ok || !b.Time.Equal(e.Time) || string(fieldsOf(b)) != string(fieldsOf(e)) {
			out = append(out, managerKey(e))
		}
	}
	if len(out) == 0 {
		return []string{"(managedFields unchanged)"}
	}
	return out
}

func managerKey(e metav1.ManagedFieldsEntry) string {
	k := e.Manager + " " + string(e.Operation)
	if e.Subresource != "" {
		k += " " + e.Subresource
	}
	return k
}

func fieldsOf(e metav1.ManagedFieldsEntry) []byte {
	if e.FieldsV1 == nil {
		return nil
	}
	return e.FieldsV1.Raw
}

// podChanges says what changed between two versions of a pod, in the
// fields a release touches.
func podChanges(prev, cur *corev1.Pod) []string {
	var out []string
	out = append(out, mapChanges("label", prev.Labels, cur.Labels)...)
	out = append(out, mapChanges("annotation", prev.Annotations, cur.Annotations)...)
	if !slices.Equal(prev.Finalizers, cur.Finalizers) {
		out = append(out, fmt.Sprintf("finalizers %v → %v", prev.Finalizers, cur.Finalizers))
	}
	if prev.DeletionTimestamp == nil && cur.DeletionTimestamp != nil {
		out = append(out, "deletion begins")
	}
	if a, b := containerImage(prev), containerImage(cur); a != b {
		out = append(out, fmt.Sprintf("spec image %s → %s", a, b))
	}
	if len(prev.Spec.ReadinessGates) != len(cur.Spec.ReadinessGates) {
		out = append(out, "spec readinessGates changed")
	}
	out = append(out, conditionChanges(prev.Status.Conditions, cur.Status.Conditions)...)
	out = append(out, containerStatusChanges(prev.Status.ContainerStatuses, cur.Status.ContainerStatuses)...)
	if prev.Status.Phase != cur.Status.Phase {
		out = append(out, fmt.Sprintf("phase %s → %s", prev.Status.Phase, cur.Status.Phase))
	}
	if len(out) == 0 {
		out = append(out, "no change in the fields above (managedFields or other status only)")
	}
	return out
}

// mapChanges names the keys added, changed or removed.
func mapChanges(what string, prev, cur map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if old, ok := prev[k]; !ok {
			out = append(out, fmt.Sprintf("%s %s added", what, k))
		} else if old != cur[k] {
			out = append(out, fmt.Sprintf("%s %s changed", what, k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := cur[k]; !ok {
			out = append(out, fmt.Sprintf("%s %s removed", what, k))
		}
	}
	return out
}

func conditionChanges(prev, cur []corev1.PodCondition) []string {
	was := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range prev {
		was[c.Type] = c.Status
	}
	var out []string
	for _, c := range cur {
		if old, ok := was[c.Type]; !ok {
			out = append(out, fmt.Sprintf("condition %s = %s", c.Type, c.Status))
		} else if old != c.Status {
			out = append(out, fmt.Sprintf("condition %s %s → %s", c.Type, old, c.Status))
		}
	}
	return out
}

func containerStatusChanges(prev, cur []corev1.ContainerStatus) []string {
	was := map[string]corev1.ContainerStatus{}
	for _, s := range prev {
		was[s.Name] = s
	}
	var out []string
	for _, s := range cur {
		old := was[s.Name]
		var parts []string
		if old.Image != s.Image {
			parts = append(parts, fmt.Sprintf("image %s → %s", old.Image, s.Image))
		}
		if old.Ready != s.Ready {
			parts = append(parts, fmt.Sprintf("ready %t → %t", old.Ready, s.Ready))
		}
		if old.RestartCount != s.RestartCount {
			parts = append(parts, fmt.Sprintf("restartCount %d → %d", old.RestartCount, s.RestartCount))
		}
		if (old.State.Running == nil) != (s.State.Running == nil) {
			parts = append(parts, "running "+fmt.Sprint(s.State.Running != nil))
		}
		if len(parts) > 0 {
			out = append(out, "container "+s.Name+" "+strings.Join(parts, ", "))
		}
	}
	return out
}
