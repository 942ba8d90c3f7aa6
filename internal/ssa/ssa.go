// Package ssa builds server-side-apply request bodies from typed objects,
// for writers that share an object field by field (a host's agent and
// CAFE's controller each apply their own conditions of a ClassicHost).
package ssa

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
