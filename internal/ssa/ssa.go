// Package ssa builds server-side-apply request bodies from typed objects,
// for writers that share an object field by field (a host's agent and
// CAFE's controller each apply their own conditions of a ClassicHost).
package ssa

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Body is obj as an apply configuration without the top-level fields named
// in drop (e.g. "status" when applying the spec) and without a creation
// timestamp, whose zero value would otherwise claim the field.
func Body(obj runtime.Object, drop ...string) (runtime.ApplyConfiguration, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: content}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	for _, field := range drop {
		unstructured.RemoveNestedField(u.Object, field)
	}
	return client.ApplyConfigurationFromUnstructured(u), nil
}

// ClassicHostConditions is the status apply of conds on host (and its
// observedGeneration): a writer's own conditions of a ClassicHost, which a
// host's agent and CAFE's controllers share, each applying its own under
// its own field manager. A condition keeps its transition time while its
// status stays; one whose status changes gets now.
func ClassicHostConditions(host *cafev1alpha1.ClassicHost, now time.Time, conds ...metav1.Condition) (runtime.ApplyConfiguration, error) {
	conds = slices.Clone(conds)
	for i := range conds {
		conds[i].LastTransitionTime = metav1.NewTime(now)
		if previous := meta.FindStatusCondition(host.Status.Conditions, conds[i].Type); previous != nil && previous.Status == conds[i].Status {
			conds[i].LastTransitionTime = previous.LastTransitionTime
		}
	}
	apply := &cafev1alpha1.ClassicHost{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ClassicHost"},
		ObjectMeta: metav1.ObjectMeta{Name: host.Name, UID: host.UID},
		Status:     cafev1alpha1.ClassicHostStatus{ObservedGeneration: host.Generation, Conditions: conds},
	}
	return Body(apply, "spec")
}

// SameCondition reports whether conds already hold cond as it would be
// written: the same status, reason, message and observed generation
// (nothing to write; the transition time is kept while the status is).
func SameCondition(conds []metav1.Condition, cond metav1.Condition) bool {
	previous := meta.FindStatusCondition(conds, cond.Type)
	return previous != nil && previous.Status == cond.Status && previous.Reason == cond.Reason &&
		previous.Message == cond.Message && previous.ObservedGeneration == cond.ObservedGeneration
}
