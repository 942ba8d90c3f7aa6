package framework

import (
	"context"

	"k8s.io/client-go/kubernetes"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// AddNodes registers simulated nodes (say, a new zone) and waits until the
// ones kwok manages are Ready. Unmanaged nodes are only registered.
func AddNodes(ctx context.Context, cs kubernetes.Interface, specs ...controlplane.NodeSpec) error {
	if err := controlplane.EnsureNodes(ctx, cs, specs); err != nil {
		return err
	}
	var managed []string
	for _, s := range specs {
		if !s.Unmanaged {
			managed = append(managed, s.Name)
		}
	}
	if len(managed) == 0 {
		return nil
	}
	return controlplane.WaitNodesReady(ctx, cs, managed)
}

// NodesInZone returns n node specs named after the zone, starting at index first.
func NodesInZone(zone string, first, n int) []controlplane.NodeSpec {
	specs := make([]controlplane.NodeSpec, 0, n)
	for i := first; i < first+n; i++ {
		specs = append(specs, controlplane.NodeSpec{Name: controlplane.NodeName(zone, i), Zone: zone})
	}
	return specs
}
