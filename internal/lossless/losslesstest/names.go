// Package losslesstest helps the pure planners' tests state what a plan
// does to which pods, in a form a table can compare.
package losslesstest

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/cafe-io/cafe/internal/lossless"
)

// PodNames lists the pods' names, in order (an empty slice, never nil).
func PodNames(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// GateNames lists the gate changes as "pod:reason", in order.
func GateNames(changes []lossless.GateChange) []string {
	out := []string{}
	for _, c := range changes {
		out = append(out, c.Pod.Name+":"+c.Reason)
	}
	return out
}
