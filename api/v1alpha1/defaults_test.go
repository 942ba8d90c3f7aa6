package v1alpha1

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The Default methods mirror the CRD's default markers. These tests apply
// both to the same objects and expect the same result, so that a marker
// changed without its Go copy (or the reverse) fails here.

func TestCafeDeploymentDefaultMatchesCRD(t *testing.T) {
	expectDefaultsMatchCRD(t, "cafe.io_cafedeployments.yaml", []defaultsCase[CafeDeployment]{
		{name: "a minimal CafeDeployment gets the CRD's defaults", obj: CafeDeployment{Spec: CafeDeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template: podTemplate(),
			Topology: Topology{Values: []string{"zone-a"}},
		}}},
		{name: "a CafeDeployment with autoReschedule and a strategy gets the CRD's nested defaults", obj: CafeDeployment{Spec: CafeDeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template: podTemplate(),
			Topology: Topology{Values: []string{"zone-a"}, AutoReschedule: AutoReschedule{Enable: true}},
			Strategy: CafeDeploymentStrategy{Pause: true, BatchSize: ptr.To(intstr.FromString("50%"))},
		}}},
		{name: "set fields, zero included, are kept", obj: CafeDeployment{Spec: CafeDeploymentSpec{
			Replicas:             ptr.To[int32](0),
			RevisionHistoryLimit: ptr.To[int32](0),
			PodSetType:           PodSetTypeStatefulSet,
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template:             podTemplate(),
			Topology: Topology{UnitType: UnitTypeCell, Values: []string{"cell-a"}, AutoReschedule: AutoReschedule{
				Enable: true, InitialDelaySeconds: ptr.To[int32](0),
			}},
			Strategy: CafeDeploymentStrategy{
				UpgradeType: UpgradeTypeBatch, GroupOrder: GroupOrderUnitByUnit, MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			},
		}}},
	})
}

func TestInPlaceSetDefaultMatchesCRD(t *testing.T) {
	expectDefaultsMatchCRD(t, "cafe.io_inplacesets.yaml", []defaultsCase[InPlaceSet]{
		{name: "a minimal InPlaceSet gets the CRD's defaults", obj: InPlaceSet{Spec: InPlaceSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template: podTemplate(),
		}}},
		{name: "set fields, zero included, are kept", obj: InPlaceSet{Spec: InPlaceSetSpec{
			Replicas:       ptr.To[int32](0),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template:       podTemplate(),
			UpdateStrategy: InPlaceSetUpdateStrategy{Partition: ptr.To[int32](2), MaxUnavailable: ptr.To(intstr.FromString("0%"))},
		}}},
	})
}

type defaultsCase[T any] struct {
	name string
	obj  T
}

// expectDefaultsMatchCRD checks that Go's Default sets on each case's
// object what the defaults of the CRD in crdFile set.
func expectDefaultsMatchCRD[T any, PT interface {
	*T
	Default()
	DeepCopy() *T
}](t *testing.T, crdFile string, tests []defaultsCase[T]) {
	crd := loadCRD(t, crdFile)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			byCRD := toMap(g, &tt.obj)
			applySchemaDefaults(byCRD, crd)
			byGo := PT(&tt.obj).DeepCopy()
			PT(byGo).Default()
			g.Expect(toMap(g, byGo)).To(Equal(byCRD))
		})
	}
}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

func loadCRD(t *testing.T, file string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatalf("Reading the generated CRD (run controller-gen first): %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		t.Fatalf("Decoding %s: %v", file, err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == GroupVersion.Version {
			return v.Schema.OpenAPIV3Schema
		}
	}
	t.Fatalf("%s has no version %s", file, GroupVersion.Version)
	return nil
}

func toMap(g *WithT, obj any) map[string]any {
	b, err := json.Marshal(obj)
	g.Expect(err).NotTo(HaveOccurred())
	m := map[string]any{}
	g.Expect(json.Unmarshal(b, &m)).To(Succeed())
	return m
}

// applySchemaDefaults defaults obj the way the API server does for what this
// API uses: a missing property with a default gets it, then every present
// object and list item is defaulted in turn.
func applySchemaDefaults(obj any, s *apiextensionsv1.JSONSchemaProps) {
	switch v := obj.(type) {
	case map[string]any:
		for name, prop := range s.Properties {
			if _, ok := v[name]; !ok && prop.Default != nil {
				var d any
				if err := json.Unmarshal(prop.Default.Raw, &d); err == nil {
					v[name] = d
				}
			}
			if child, ok := v[name]; ok {
				applySchemaDefaults(child, &prop)
			}
		}
	case []any:
		if s.Items != nil && s.Items.Schema != nil {
			for _, item := range v {
				applySchemaDefaults(item, s.Items.Schema)
			}
		}
	}
}
