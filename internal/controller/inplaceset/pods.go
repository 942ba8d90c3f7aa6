package inplaceset

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podutil"
)

const (
	// setNameLabel marks pods and revisions with the InPlaceSet that owns them.
	setNameLabel = cafev1alpha1.InPlaceSetLabel
	// inPlaceStateAnnotation records an in-place update in flight: the
	// revision and the imageIDs the kubelet reported before, so completion is
	// judged from the container status as with a real kubelet.
	inPlaceStateAnnotation = "cafe.io/inplace-update-state"
)

// inPlaceState is the value of inPlaceStateAnnotation.
type inPlaceState struct {
	Revision      string            `json:"revision"`
	ImageIDs      map[string]string `json:"imageIDs"`
	RestartCounts map[string]int32  `json:"restartCounts,omitempty"`
	At            metav1.Time       `json:"at"`
}

// podName is the name of the pod in slot i. Names are deterministic so a
// reconcile working from a stale cache gets AlreadyExists instead of creating
// a duplicate.
func podName(set *cafev1alpha1.InPlaceSet, slot int) string {
	return set.Name + "-" + strconv.Itoa(slot)
}

// newPod builds a pod of the set at the given revision: the template, the
// traffic-ready readiness gate, the revision label, pinned to the set's unit
// and spread over the unit's nodes.
func newPod(set *cafev1alpha1.InPlaceSet, template *corev1.PodTemplateSpec, hash string, slot int, scheme *runtime.Scheme) (*corev1.Pod, error) {
	t := template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   set.Namespace,
			Name:        podName(set, slot),
			Labels:      maps.Clone(t.Labels),
			Annotations: maps.Clone(t.Annotations),
		},
		Spec: t.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	// A pod is never born asking for a drain, a migration or a force
	// delete: the CRD refuses such templates, and one admitted before that
	// rule must not make every new pod ask to be replaced.
	maps.DeleteFunc(pod.Annotations, isReserved)
	pod.Labels[cafev1alpha1.RevisionHashLabel] = hash
	pod.Labels[setNameLabel] = set.Name
	if set.Spec.Unit != nil {
		pod.Labels[cafev1alpha1.UnitLabel] = set.Spec.Unit.Value
		podutil.PinToUnit(&pod.Spec, *set.Spec.Unit)
	}
	lossless.EnsureGate(&pod.Spec)
	podutil.SpreadOverNodes(&pod.Spec, map[string]string{setNameLabel: set.Name})
	if err := controllerutil.SetControllerReference(set, pod, scheme); err != nil {
		return nil, err
	}
	return pod, nil
}

// inPlacePatch is the one merge patch that moves a drained pod to the update
// revision in place: new images, the template's labels and annotations, the
// revision label and the in-flight record.
func inPlacePatch(pod *corev1.Pod, from, to *corev1.PodTemplateSpec, hash string, now time.Time) ([]byte, error) {
	state := inPlaceState{Revision: hash, ImageIDs: map[string]string{}, RestartCounts: map[string]int32{}, At: metav1.NewTime(now)}
	for _, s := range pod.Status.ContainerStatuses {
		state.ImageIDs[s.Name] = s.ImageID
		state.RestartCounts[s.Name] = s.RestartCount
	}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		return nil, err
	}
	labels := map[string]any{}
	annotations := map[string]any{}
	diffMeta(labels, from.Labels, to.Labels)
	// CAFE's own annotations on the pod (a drain or migration request) are
	// the pod's, never the template's: an update neither sets nor clears them.
	diffMeta(annotations, withoutReserved(from.Annotations), withoutReserved(to.Annotations))
	// The labels that make the pod CAFE's never change (the pod webhook
	// refuses it), whatever a template says.
	delete(labels, setNameLabel)
	delete(labels, cafev1alpha1.DeploymentLabel)
	labels[cafev1alpha1.RevisionHashLabel] = hash
	annotations[inPlaceStateAnnotation] = string(stateJSON)

	containers := make([]map[string]any, 0, len(to.Spec.Containers))
	for _, c := range to.Spec.Containers {
		containers = append(containers, map[string]any{"name": c.Name, "image": c.Image})
	}
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"labels": labels, "annotations": annotations, "resourceVersion": pod.ResourceVersion},
		"spec":     map[string]any{"containers": containers},
	})
}

func isReserved(key, _ string) bool { return cafev1alpha1.IsReservedAnnotation(key) }

// withoutReserved is a copy of annotations without CAFE's own keys.
func withoutReserved(annotations map[string]string) map[string]string {
	out := maps.Clone(annotations)
	maps.DeleteFunc(out, isReserved)
	return out
}

// diffMeta writes into patch what turns from into to (nil deletes a key).
func diffMeta(patch map[string]any, from, to map[string]string) {
	for k := range from {
		if _, ok := to[k]; !ok {
			patch[k] = nil
		}
	}
	for k, v := range to {
		if from[k] != v {
			patch[k] = v
		}
	}
}

// inPlacePending reports whether an in-place update was applied and the
// kubelet has not yet reported every changed container restarted with its
// new image. A container counts as restarted when it reports the spec's
// image, a new imageID, or a higher restartCount: kubelets may report a
// normalised image name, and a tag moved to the same digest keeps the ID.
func inPlacePending(pod *corev1.Pod) bool {
	raw, ok := pod.Annotations[inPlaceStateAnnotation]
	if !ok || runsSpecImagesReady(pod) {
		// Done whatever the record says: skip decoding it (the record stays
		// on every updated pod, and this runs for each pod each reconcile).
		return false
	}
	var state inPlaceState
	if err := json.Unmarshal([]byte(raw), &state); err != nil || state.Revision != pod.Labels[cafev1alpha1.RevisionHashLabel] {
		return false
	}
	images := map[string]string{}
	for _, c := range pod.Spec.Containers {
		images[c.Name] = c.Image
	}
	for _, s := range pod.Status.ContainerStatuses {
		restarted := s.Image == images[s.Name] || s.ImageID != state.ImageIDs[s.Name] || s.RestartCount > state.RestartCounts[s.Name]
		if !restarted {
			return true
		}
		if !s.Ready {
			return true
		}
	}
	return false
}

// runsSpecImagesReady: every container reports its spec image and is ready.
func runsSpecImagesReady(pod *corev1.Pod) bool {
	if len(pod.Status.ContainerStatuses) != len(pod.Spec.Containers) {
		return false
	}
	for i, s := range pod.Status.ContainerStatuses {
		if !s.Ready || s.Name != pod.Spec.Containers[i].Name || s.Image != pod.Spec.Containers[i].Image {
			return false
		}
	}
	return true
}

// slotOf returns the slot number of a pod of the set, or -1.
func slotOf(set *cafev1alpha1.InPlaceSet, pod *corev1.Pod) int {
	prefix := set.Name + "-"
	if len(pod.Name) <= len(prefix) || pod.Name[:len(prefix)] != prefix {
		return -1
	}
	n, err := strconv.Atoi(pod.Name[len(prefix):])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// freeSlots returns the n lowest slot numbers no pod of the set uses.
func freeSlots(set *cafev1alpha1.InPlaceSet, pods []*corev1.Pod, n int) []int {
	if n <= 0 {
		// Nearly every reconcile creates nothing: no need to read the names.
		return nil
	}
	used := make(map[int]bool, len(pods))
	for _, p := range pods {
		if s := slotOf(set, p); s >= 0 {
			used[s] = true
		}
	}
	slots := make([]int, 0, n)
	for i := 0; len(slots) < n; i++ {
		if !used[i] {
			slots = append(slots, i)
		}
	}
	return slots
}

func describe(pod *corev1.Pod) string { return fmt.Sprintf("%s/%s", pod.Namespace, pod.Name) }
