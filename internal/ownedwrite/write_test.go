package ownedwrite

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReplacePatchReplacesTheSpecAndSetsOnlyDesiredMetadataKeys(t *testing.T) {
	g := NewWithT(t)
	existing := &corev1.Service{ObjectMeta: metav1.ObjectMeta{UID: "uid-1",
		Labels:      map[string]string{"app": "a", "added-by": "someone"},
		Annotations: map[string]string{"cafe.io/fast-release": "r1", "note/x": "keep"},
	}}
	desired := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", "cafe.io/unit": "zone-a"}, Annotations: map[string]string{"hash": "h2"}},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "a"}},
	}
	data, err := replacePatch(desired, existing, Options{Drop: []string{"cafe.io/fast-release", "absent"}})
	g.Expect(err).NotTo(HaveOccurred())
	var ops []map[string]any
	g.Expect(json.Unmarshal(data, &ops)).To(Succeed())
	g.Expect(ops).To(ConsistOf(
		map[string]any{"op": "test", "path": "/metadata/uid", "value": "uid-1"},
		map[string]any{"op": "add", "path": "/metadata/labels/cafe.io~1unit", "value": "zone-a"},
		map[string]any{"op": "add", "path": "/metadata/annotations/hash", "value": "h2"},
		map[string]any{"op": "remove", "path": "/metadata/annotations/cafe.io~1fast-release", "value": nil},
		map[string]any{"op": "replace", "path": "/spec", "value": map[string]any{"selector": map[string]any{"app": "a"}}},
	), "labels and annotations of others stay; the spec is replaced whole")

	existing.Annotations = nil
	data, err = replacePatch(desired, existing, Options{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(data)).To(ContainSubstring(`{"op":"add","path":"/metadata/annotations","value":{"hash":"h2"}}`), "a missing map is added whole")
}
