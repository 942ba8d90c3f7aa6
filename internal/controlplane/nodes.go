package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Node labels CAFE's topology is expressed in.
const (
	ZoneLabel = cafev1alpha1.ZoneNodeLabel
	CellLabel = cafev1alpha1.CellNodeLabel
)

// DefaultZones are the zones `cafe dev up` spreads its nodes over.
var DefaultZones = []string{"zone-a", "zone-b", "zone-c"}

// Topology says how many simulated nodes to register and where.
type Topology struct {
	Nodes int      `json:"nodes"`
	Zones []string `json:"zones"`
	// Cells, when set, are assigned to the nodes of every zone in turn, so each
	// zone holds nodes of each cell when there are enough nodes.
	Cells []string `json:"cells,omitempty"`
}

// DefaultTopology is 6 nodes over zone-a, zone-b and zone-c.
func DefaultTopology() Topology {
	return Topology{Nodes: 6, Zones: slices.Clone(DefaultZones)}
}

// Validate names the first problem with the topology.
func (t Topology) Validate() error {
	if t.Nodes < 0 {
		return fmt.Errorf("nodes: must not be negative, got %d", t.Nodes)
	}
	if t.Nodes > 0 && len(t.Zones) == 0 {
		return errors.New("zones: at least one zone is needed to register nodes")
	}
	for field, values := range map[string][]string{"zones": t.Zones, "cells": t.Cells} {
		seen := sets.New[string]()
		for _, v := range values {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 || v == "" {
				return fmt.Errorf("%s: %q is not a valid label value", field, v)
			}
			if seen.Has(v) {
				return fmt.Errorf("%s: %q is listed twice", field, v)
			}
			seen.Insert(v)
		}
	}
	return nil
}

// NodeSpec is one simulated node.
type NodeSpec struct {
	Name string
	Zone string
	Cell string
	// Unmanaged nodes are registered without the kwok annotation: nobody
	// heartbeats them, which is how a test simulates a dead kubelet.
	Unmanaged bool
	// CPU, Memory and Pods are the node's capacity; zero means the defaults.
	CPU    string
	Memory string
	Pods   int
}

// NodeSpecs spreads the nodes round-robin over the zones: node i is in zone
// i mod len(zones) and, with cells, in cell (i / len(zones)) mod len(cells).
func (t Topology) NodeSpecs() []NodeSpec {
	specs := make([]NodeSpec, 0, t.Nodes)
	perZone := map[string]int{}
	for i := range t.Nodes {
		zone := t.Zones[i%len(t.Zones)]
		spec := NodeSpec{Name: NodeName(zone, perZone[zone]), Zone: zone}
		perZone[zone]++
		if len(t.Cells) > 0 {
			spec.Cell = t.Cells[(i/len(t.Zones))%len(t.Cells)]
		}
		specs = append(specs, spec)
	}
	return specs
}

// NodeName is the name of the i-th simulated node of a zone.
func NodeName(zone string, i int) string {
	return fmt.Sprintf("node-%s-%d", zone, i)
}

// NodeNames lists the names of specs.
func NodeNames(specs []NodeSpec) []string {
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	return names
}

// Node builds the Node object of a spec: labelled with its zone (and cell),
// annotated for kwok, with the capacity a kubelet would report.
func (s NodeSpec) Node() *corev1.Node {
	cpu, mem, pods := s.CPU, s.Memory, s.Pods
	if cpu == "" {
		cpu = "32"
	}
	if mem == "" {
		mem = "256Gi"
	}
	if pods == 0 {
		pods = 110
	}
	labels := map[string]string{
		"kubernetes.io/hostname": s.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
		ZoneLabel:                s.Zone,
	}
	if s.Cell != "" {
		labels[CellLabel] = s.Cell
	}
	annotations := map[string]string{"node.alpha.kubernetes.io/ttl": "0"}
	if !s.Unmanaged {
		annotations[KwokNodeAnnotation] = KwokNodeValue
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(mem),
		corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: labels, Annotations: annotations},
		Status:     corev1.NodeStatus{Capacity: capacity, Allocatable: capacity.DeepCopy()},
	}
}

// EnsureNodes registers every node that does not exist yet.
func EnsureNodes(ctx context.Context, cs kubernetes.Interface, specs []NodeSpec) error {
	for _, s := range specs {
		if _, err := cs.CoreV1().Nodes().Create(ctx, s.Node(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("registering node %s: %w", s.Name, err)
		}
	}
	return nil
}

// WaitNodesReady watches nodes until every named one reports Ready=True.
func WaitNodesReady(ctx context.Context, cs kubernetes.Interface, names []string) error {
	want := sets.New(names...)
	ready := sets.New[string]()
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "nodes", metav1.NamespaceAll, fields.Everything())
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		node, ok := ev.Object.(*corev1.Node)
		if !ok || !want.Has(node.Name) {
			return false, nil
		}
		if ev.Type != watch.Deleted && NodeReady(node) {
			ready.Insert(node.Name)
		} else {
			ready.Delete(node.Name)
		}
		return ready.Len() == want.Len(), nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d nodes Ready (missing %v): %w", ready.Len(), want.Len(), sets.List(want.Difference(ready)), err)
	}
	return nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
