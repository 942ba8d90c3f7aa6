package plan

import (
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework/crdcheck"
)

// FuzzNewOnAdmittedSpecs builds CafeDeployments from the fuzzer's values,
// keeps those the CRD admits (crdcheck runs the API server's own schema and
// CEL validation in-process), and plans them: never a panic, never more
// groups than the status holds, every replica planned, and never a refusal
// for a bound the CRD is meant to enforce (replicas, number of groups).
// Seeds are in testdata/fuzz/FuzzNewOnAdmittedSpecs; `make test` runs it for
// a bounded time.
func FuzzNewOnAdmittedSpecs(f *testing.F) {
	v := crdcheck.MustFor(f, "CafeDeployment")
	f.Add(int32(6), int32(0), uint8(0), uint8(3), false, false, []byte{}, []byte{})
	f.Add(int32(512), int32(1), uint8(0), uint8(3), false, true, []byte{}, []byte{})
	f.Add(int32(100000), int32(0), uint8(1), uint8(32), true, false, []byte{}, []byte{1, 2, 200})
	f.Add(int32(600), int32(0), uint8(0), uint8(5), true, false, []byte{10, 1, 130, 2, 255, 0}, []byte{})
	f.Fuzz(func(t *testing.T, replicas, batch int32, percent, units uint8, unitByUnit, batchType bool, groups, pins []byte) {
		obj := fuzzedCafeDeployment(replicas, batch, percent, units, unitByUnit, batchType, groups, pins)
		admitted, refused, err := crdcheck.Admitted(context.Background(), v, obj)
		if err != nil {
			t.Fatal(err)
		}
		if refused != nil {
			return
		}
		p, err := New(admitted.Spec)
		if err != nil {
			var specErr *SpecError
			if !errors.As(err, &specErr) {
				t.Fatalf("%s: not a SpecError: %v", describe(admitted.Spec), err)
			}
			switch specErr.Field {
			case "spec.replicas", "spec.strategy.batchSize", "spec.strategy":
				t.Fatalf("%s: the CRD admitted what the planner refuses: %v", describe(admitted.Spec), err)
			}
			return
		}
		if len(p.Groups) > cafev1alpha1.MaxReleaseGroups {
			t.Fatalf("%s: %d groups", describe(admitted.Spec), len(p.Groups))
		}
		if p.Total() != *admitted.Spec.Replicas {
			t.Fatalf("%s: plans %d pods", describe(admitted.Spec), p.Total())
		}
		for _, g := range p.Groups {
			if len(g.Pods) > len(p.Units) || len(g.Cumulative) != len(p.Units) {
				t.Fatalf("%s: group %d has %d/%d unit entries", describe(admitted.Spec), g.Index, len(g.Pods), len(g.Cumulative))
			}
		}
	})
}

// fuzzedCafeDeployment turns the fuzzer's values into a CafeDeployment:
// units u0..u(n-1); a batch size as an integer, or a percentage when
// percent is set; custom groups from pairs of bytes (size, units bitmask;
// a size above 200 is a percentage); unit pins from bytes (above 200 a
// percentage).
func fuzzedCafeDeployment(replicas, batch int32, percent, units uint8, unitByUnit, batchType bool, groups, pins []byte) *cafev1alpha1.CafeDeployment {
	labels := map[string]string{"app": "fuzz"}
	cd := &cafev1alpha1.CafeDeployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "CafeDeployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "fuzz"},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
			},
		},
	}
	for i := range int(units % 40) {
		cd.Spec.Topology.Values = append(cd.Spec.Topology.Values, fmt.Sprintf("u%d", i))
	}
	st := &cd.Spec.Strategy
	switch {
	case percent > 0:
		st.BatchSize = ptr.To(intstr.FromString(fmt.Sprintf("%d%%", percent)))
	case batch != 0:
		st.BatchSize = ptr.To(intstr.FromInt32(batch))
	}
	if unitByUnit {
		st.GroupOrder = cafev1alpha1.GroupOrderUnitByUnit
	}
	if batchType {
		st.UpgradeType = cafev1alpha1.UpgradeTypeBatch
	}
	for i := 0; i+1 < len(groups) && i < 140; i += 2 {
		g := cafev1alpha1.ReleaseGroup{Replicas: intOrPercent(groups[i])}
		for j, u := range cd.Spec.Topology.Values {
			if j < 8 && groups[i+1]&(1<<j) != 0 {
				g.Units = append(g.Units, u)
			}
		}
		st.Groups = append(st.Groups, g)
	}
	for i, b := range pins {
		if i >= len(cd.Spec.Topology.Values) {
			break
		}
		if cd.Spec.Topology.UnitReplicas == nil {
			cd.Spec.Topology.UnitReplicas = map[string]intstr.IntOrString{}
		}
		cd.Spec.Topology.UnitReplicas[cd.Spec.Topology.Values[i]] = intOrPercent(b)
	}
	return cd
}

// intOrPercent is b as an integer, or above 200 as a percentage of b-200.
func intOrPercent(b byte) intstr.IntOrString {
	if b > 200 {
		return intstr.FromString(fmt.Sprintf("%d%%", int(b-200)*2))
	}
	return intstr.FromInt32(int32(b))
}
