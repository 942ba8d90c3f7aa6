package controlplane

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

func TestNodeSpecsSpreadNodesRoundRobinOverZonesAndCells(t *testing.T) {
	g := NewWithT(t)
	specs := Topology{Nodes: 7, Zones: []string{"zone-a", "zone-b", "zone-c"}, Cells: []string{"cell-1", "cell-2"}}.NodeSpecs()

	got := make([][3]string, 0, len(specs))
	for _, s := range specs {
		got = append(got, [3]string{s.Name, s.Zone, s.Cell})
	}
	g.Expect(got).To(Equal([][3]string{
		{"node-zone-a-0", "zone-a", "cell-1"},
		{"node-zone-b-0", "zone-b", "cell-1"},
		{"node-zone-c-0", "zone-c", "cell-1"},
		{"node-zone-a-1", "zone-a", "cell-2"},
		{"node-zone-b-1", "zone-b", "cell-2"},
		{"node-zone-c-1", "zone-c", "cell-2"},
		{"node-zone-a-2", "zone-a", "cell-1"},
	}))
}

func TestNodeCarriesZoneCellKwokAnnotationAndCapacity(t *testing.T) {
	g := NewWithT(t)
	n := NodeSpec{Name: "n1", Zone: "zone-b", Cell: "cell-9"}.Node()
	g.Expect(n.Labels).To(HaveKeyWithValue(ZoneLabel, "zone-b"))
	g.Expect(n.Labels).To(HaveKeyWithValue(CellLabel, "cell-9"))
	g.Expect(n.Labels).To(HaveKeyWithValue("kubernetes.io/hostname", "n1"))
	g.Expect(n.Annotations).To(HaveKeyWithValue(KwokNodeAnnotation, KwokNodeValue))
	g.Expect(n.Status.Allocatable.Pods().Value()).To(Equal(int64(110)))
	g.Expect(n.Status.Capacity.Cpu().String()).To(Equal("32"))

	unmanaged := NodeSpec{Name: "n2", Zone: "zone-a", Unmanaged: true, Pods: 5}.Node()
	g.Expect(unmanaged.Annotations).NotTo(HaveKey(KwokNodeAnnotation), "nobody must heartbeat an unmanaged node")
	g.Expect(unmanaged.Labels).NotTo(HaveKey(CellLabel))
	g.Expect(unmanaged.Status.Capacity.Pods().Value()).To(Equal(int64(5)))
}

func TestTopologyValidateNamesTheBadField(t *testing.T) {
	tests := []struct {
		name     string
		topology Topology
		wantErr  string
	}{
		{"the default is valid", DefaultTopology(), ""},
		{"no nodes needs no zones", Topology{}, ""},
		{"negative nodes are refused", Topology{Nodes: -1, Zones: DefaultZones}, "nodes: must not be negative"},
		{"nodes without zones are refused", Topology{Nodes: 3}, "zones: at least one zone"},
		{"a duplicate zone is refused", Topology{Nodes: 3, Zones: []string{"a", "a"}}, `zones: "a" is listed twice`},
		{"an invalid cell name is refused", Topology{Nodes: 3, Zones: []string{"a"}, Cells: []string{"not valid!"}}, `cells: "not valid!" is not a valid label value`},
		{"an empty zone name is refused", Topology{Nodes: 3, Zones: []string{""}}, `zones: "" is not a valid label value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tt.topology.Validate()
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
		})
	}
}

func TestNodeReadyReadsTheReadyCondition(t *testing.T) {
	g := NewWithT(t)
	node := &corev1.Node{}
	g.Expect(NodeReady(node)).To(BeFalse())
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	g.Expect(NodeReady(node)).To(BeTrue())
	node.Status.Conditions[1].Status = corev1.ConditionUnknown
	g.Expect(NodeReady(node)).To(BeFalse())
}
