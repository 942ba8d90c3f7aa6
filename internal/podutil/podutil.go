// Package podutil holds what every CAFE pod set does to its pods, whatever
// creates them (an InPlaceSet, a ReplicaSet, a StatefulSet): pinning them to
// their unit, spreading them over the unit's nodes, and reading readiness.
package podutil

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// HostnameTopologyKey is the node label pods are spread over.
const HostnameTopologyKey = "kubernetes.io/hostname"

// PinToUnit adds a required node affinity term for the unit's label to every
// existing term (terms are ORed, so each must carry it).
func PinToUnit(spec *corev1.PodSpec, unit cafev1alpha1.PodSetUnit) {
	req := corev1.NodeSelectorRequirement{Key: unit.Key, Operator: corev1.NodeSelectorOpIn, Values: []string{unit.Value}}
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		terms = []corev1.NodeSelectorTerm{{}}
	}
	for i := range terms {
		terms[i].MatchExpressions = append(terms[i].MatchExpressions, req)
	}
	na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = terms
}

// SpreadOverNodes spreads the pods matching podLabels over the nodes (of
// their unit), unless the template says how to spread over nodes already.
func SpreadOverNodes(spec *corev1.PodSpec, podLabels map[string]string) {
	for _, c := range spec.TopologySpreadConstraints {
		if c.TopologyKey == HostnameTopologyKey {
			return
		}
	}
	spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
		MaxSkew:           1,
		TopologyKey:       HostnameTopologyKey,
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: podLabels},
	})
}

// ContainersReadySince reports whether the pod's containers are ready and
// since when: the later of the ContainersReady transition and the newest
// container start (an in-place restart does not always flip
// ContainersReady).
func ContainersReadySince(pod *corev1.Pod) (bool, time.Time) {
	var since time.Time
	ready := false
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.ContainersReady {
			ready = c.Status == corev1.ConditionTrue
			since = c.LastTransitionTime.Time
		}
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.State.Running != nil && s.State.Running.StartedAt.After(since) {
			since = s.State.Running.StartedAt.Time
		}
	}
	return ready, since
}

// Ready reports the pod's Ready condition (containers and every readiness
// gate).
func Ready(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WriteTarget is the object to hand a pod write (a patch of the pod or of
// its status) to: the pod's metadata only, so that the API server answers
// with the written pod's metadata (its resourceVersion) rather than the
// whole pod, which CAFE's writers would decode only to throw away.
func WriteTarget(pod *corev1.Pod) *metav1.PartialObjectMetadata {
	target := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	target.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	return target
}
