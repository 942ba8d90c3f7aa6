package v1alpha1

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestTopologyUnitLabelKey(t *testing.T) {
	tests := []struct {
		name     string
		unitType UnitType
		want     string
	}{
		{name: "a zone topology spreads over the well-known zone label", unitType: UnitTypeZone, want: "topology.kubernetes.io/zone"},
		{name: "a cell topology spreads over the CAFE cell label", unitType: UnitTypeCell, want: "cafe.io/cell"},
		{name: "an unset unit type means Zone, as the API defaults it", unitType: "", want: "topology.kubernetes.io/zone"},
		{name: "an unknown unit type has no label", unitType: "Region", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Topology{UnitType: tt.unitType}.UnitLabelKey()).To(Equal(tt.want))
		})
	}
}

func TestResolveIntOrPercent(t *testing.T) {
	tests := []struct {
		name    string
		value   intstr.IntOrString
		total   int32
		roundUp bool
		want    int32
		wantErr bool
	}{
		{name: "an integer is taken as is", value: intstr.FromInt32(3), total: 10, want: 3},
		{name: "an integer may exceed the total", value: intstr.FromInt32(30), total: 10, want: 30},
		{name: "a percentage rounds down by default", value: intstr.FromString("25%"), total: 10, want: 2},
		{name: "a percentage rounds up when asked", value: intstr.FromString("25%"), total: 10, roundUp: true, want: 3},
		{name: "an exact percentage does not round up", value: intstr.FromString("50%"), total: 10, roundUp: true, want: 5},
		{name: "0% is nothing", value: intstr.FromString("0%"), total: 10, roundUp: true, want: 0},
		{name: "100% is everything", value: intstr.FromString("100%"), total: 7, want: 7},
		{name: "a negative integer is rejected", value: intstr.FromInt32(-1), total: 10, wantErr: true},
		{name: "a percentage above 100% is rejected", value: intstr.FromString("101%"), total: 10, wantErr: true},
		{name: "a percentage with a leading zero is rejected", value: intstr.FromString("05%"), total: 10, wantErr: true},
		{name: "a number without a percent sign is rejected", value: intstr.FromString("5"), total: 10, wantErr: true},
		{name: "a fractional percentage is rejected", value: intstr.FromString("2.5%"), total: 10, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := ResolveIntOrPercent(tt.value, tt.total, tt.roundUp)
			if tt.wantErr {
				g.Expect(err).To(HaveOccurred())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestSplitReplicas(t *testing.T) {
	abc := []string{"zone-a", "zone-b", "zone-c"}
	tests := []struct {
		name         string
		replicas     int32
		values       []string
		unitReplicas map[string]intstr.IntOrString
		want         map[string]int32
		wantErr      string
	}{
		{
			name:     "replicas split evenly when they divide",
			replicas: 6, values: abc,
			want: map[string]int32{"zone-a": 2, "zone-b": 2, "zone-c": 2},
		},
		{
			name:     "the remainder goes to the first units in values order",
			replicas: 8, values: abc,
			want: map[string]int32{"zone-a": 3, "zone-b": 3, "zone-c": 2},
		},
		{
			name:     "the remainder follows values order, not name order",
			replicas: 4, values: []string{"zone-c", "zone-a", "zone-b"},
			want: map[string]int32{"zone-c": 2, "zone-a": 1, "zone-b": 1},
		},
		{
			name:     "fewer replicas than units leaves the last units empty",
			replicas: 2, values: abc,
			want: map[string]int32{"zone-a": 1, "zone-b": 1, "zone-c": 0},
		},
		{
			name:     "zero replicas gives every unit zero",
			replicas: 0, values: abc,
			want: map[string]int32{"zone-a": 0, "zone-b": 0, "zone-c": 0},
		},
		{
			name:     "a pinned integer is kept and the other units share the rest",
			replicas: 10, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-b": intstr.FromInt32(1)},
			want:         map[string]int32{"zone-a": 5, "zone-b": 1, "zone-c": 4},
		},
		{
			name:     "a pinned percentage rounds down and the other units share the rest",
			replicas: 10, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromString("33%")},
			want:         map[string]int32{"zone-a": 3, "zone-b": 4, "zone-c": 3},
		},
		{
			name:     "a pinned zero empties a unit",
			replicas: 5, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-c": intstr.FromInt32(0)},
			want:         map[string]int32{"zone-a": 3, "zone-b": 2, "zone-c": 0},
		},
		{
			name:     "integers pinning every unit exactly are kept",
			replicas: 5, values: []string{"zone-a", "zone-b"},
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(2), "zone-b": intstr.FromInt32(3)},
			want:         map[string]int32{"zone-a": 2, "zone-b": 3},
		},
		{
			name:     "percentages pinning every unit share what rounding left over",
			replicas: 10, values: abc,
			unitReplicas: map[string]intstr.IntOrString{
				"zone-a": intstr.FromString("33%"), "zone-b": intstr.FromString("33%"), "zone-c": intstr.FromString("34%"),
			},
			want: map[string]int32{"zone-a": 4, "zone-b": 3, "zone-c": 3},
		},
		{
			name:     "with every unit pinned, only the percentage units take the leftover",
			replicas: 10, values: abc,
			unitReplicas: map[string]intstr.IntOrString{
				"zone-a": intstr.FromInt32(2), "zone-b": intstr.FromString("50%"), "zone-c": intstr.FromString("25%"),
			},
			want: map[string]int32{"zone-a": 2, "zone-b": 6, "zone-c": 2},
		},
		{
			name:     "integers pinning every unit short of replicas are rejected",
			replicas: 6, values: []string{"zone-a", "zone-b"},
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(2), "zone-b": intstr.FromInt32(3)},
			wantErr:      "adding up to 5, not the 6 replicas",
		},
		{
			name:     "integers above replicas are rejected",
			replicas: 4, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(3), "zone-b": intstr.FromInt32(2)},
			wantErr:      "asks for 5 pods, more than the 4 replicas",
		},
		{
			name:     "integers and percentages together above replicas are rejected",
			replicas: 10, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(8), "zone-b": intstr.FromString("50%")},
			wantErr:      "asks for 13 pods, more than the 10 replicas",
		},
		{
			name:     "unknown units are rejected and named",
			replicas: 4, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-y": intstr.FromInt32(1), "zone-x": intstr.FromInt32(1)},
			wantErr:      "unknown units zone-x, zone-y",
		},
		{
			name:     "a malformed percentage is rejected with its unit",
			replicas: 4, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromString("150%")},
			wantErr:      "topology.unitReplicas[zone-a]",
		},
		{
			name:     "a negative integer is rejected",
			replicas: 4, values: abc,
			unitReplicas: map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(-1)},
			wantErr:      "negative",
		},
		{
			name:     "an empty topology is rejected",
			replicas: 4,
			wantErr:  "topology.values is empty",
		},
		{
			name:     "a unit listed twice is rejected",
			replicas: 4, values: []string{"zone-a", "zone-a"},
			wantErr: `unit "zone-a" is listed twice`,
		},
		{
			name:     "negative replicas are rejected",
			replicas: -1, values: abc,
			wantErr: "replicas -1 is negative",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := SplitReplicas(tt.replicas, Topology{Values: tt.values, UnitReplicas: tt.unitReplicas})
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
			var sum int32
			for _, n := range got {
				sum += n
			}
			g.Expect(sum).To(Equal(tt.replicas), "every replica lands in exactly one unit")
		})
	}
}

func TestSplitReplicasIsDeterministic(t *testing.T) {
	g := NewWithT(t)
	topology := Topology{
		Values: []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"},
		UnitReplicas: map[string]intstr.IntOrString{
			"u2": intstr.FromString("10%"), "u5": intstr.FromInt32(3), "u7": intstr.FromString("20%"),
		},
	}
	first, err := SplitReplicas(23, topology)
	g.Expect(err).NotTo(HaveOccurred())
	for range 50 {
		again, err := SplitReplicas(23, topology)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(again).To(Equal(first))
	}
}

func TestCafeDeploymentStrategyWaitsForConfirm(t *testing.T) {
	tests := []struct {
		name string
		need *bool
		want bool
	}{
		{name: "an unset needWaitingForConfirm does not wait", need: nil, want: false},
		{name: "an explicit false does not wait", need: ptr.To(false), want: false},
		{name: "an explicit true waits", need: ptr.To(true), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(CafeDeploymentStrategy{NeedWaitingForConfirm: tt.need}.WaitsForConfirm()).To(Equal(tt.want))
		})
	}
}

func TestFastReleaseRequested(t *testing.T) {
	withTemplateRevision := func(annotation, appRevision string) *CafeDeployment {
		cd := &CafeDeployment{}
		if annotation != "" {
			cd.Annotations = map[string]string{FastReleaseAnnotation: annotation}
		}
		if appRevision != "" {
			cd.Spec.Template.Labels = map[string]string{AppRevisionLabel: appRevision}
		}
		return cd
	}
	tests := []struct {
		name string
		cd   *CafeDeployment
		want bool
	}{
		{"no annotation: a grouped release", withTemplateRevision("", "shop-r2"), false},
		{"the annotation names the template's hash (cafe deploy rollback --fast)", withTemplateRevision("abc12", ""), true},
		{"the annotation names the app revision the template renders", withTemplateRevision("shop-r2", "shop-r2"), true},
		{"a request left for another app revision is ignored", withTemplateRevision("shop-r1", "shop-r2"), false},
		{"a request left for another hash is ignored", withTemplateRevision("zzz99", "shop-r2"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(tt.cd.FastReleaseRequested("abc12")).To(Equal(tt.want))
		})
	}
}
