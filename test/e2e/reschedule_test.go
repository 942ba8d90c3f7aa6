package e2e

import (
	"context"
	"maps"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/test/framework"
)

// setZoneSchedulable cordons or uncordons every node of a zone.
func setZoneSchedulable(ctx context.Context, g Gomega, zone string, schedulable bool) {
	nodes := &corev1.NodeList{}
	g.Expect(k8sClient.List(ctx, nodes, client.MatchingLabels{controlplane.ZoneLabel: zone})).To(Succeed())
	g.Expect(nodes.Items).NotTo(BeEmpty())
	for i := range nodes.Items {
		n := &nodes.Items[i]
		patch := client.MergeFrom(n.DeepCopy())
		n.Spec.Unschedulable = !schedulable
		g.Expect(k8sClient.Patch(ctx, n, patch)).To(Succeed())
	}
}

// zoneOfNode maps every node to its zone.
func zoneOfNode(ctx context.Context, g Gomega) map[string]string {
	nodes := &corev1.NodeList{}
	g.Expect(k8sClient.List(ctx, nodes)).To(Succeed())
	out := map[string]string{}
	for _, n := range nodes.Items {
		out[n.Name] = n.Labels[controlplane.ZoneLabel]
	}
	return out
}

// servingPerZone counts Ready, not terminating pods per zone of their node.
func servingPerZone(pods []*corev1.Pod, zones map[string]string) map[string]int {
	out := map[string]int{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && podReady(p) {
			out[zones[p.Spec.NodeName]]++
		}
	}
	return out
}

// Issue scenario 6: a zone with no schedulable capacity makes its replicas
// move to the other zones after initialDelaySeconds; capacity returning
// brings them back, losslessly.
func TestAutoRescheduleMovesReplicasOutOfAFullZoneAndBack(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	podLabels := map[string]string{"app": "moving"}
	g.Expect(k8sClient.Create(ctx, service(ns, "moving", podLabels))).To(Succeed())

	setZoneSchedulable(ctx, g, "zone-c", false)
	t.Cleanup(func() { setZoneSchedulable(context.Background(), NewWithT(t), "zone-c", true) })

	cd := cafeDeployment(ns, "moving", 6, podLabels)
	cd.Spec.Topology.AutoReschedule = cafev1alpha1.AutoReschedule{Enable: true, InitialDelaySeconds: ptr.To[int32](1)}
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())

	zones := zoneOfNode(ctx, g)
	moved := waitForSetRollout(ctx, g, ns, podLabels, 6, "example.com/app:v1")
	g.Expect(servingPerZone(moved, zones)).To(Equal(map[string]int{"zone-a": 3, "zone-b": 3}))
	status := waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		return len(c.Status.Units) == 3 && ptr.Deref(c.Status.Units[2].RescheduledReplicas, 0) == 2
	})
	g.Expect(status.Status.Units[2].Name).To(Equal("zone-c"))

	rec := framework.Record(ctx, t, g, env.Admin, ns)

	setZoneSchedulable(ctx, g, "zone-c", true)
	waitForRelease(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) bool {
		return len(c.Status.Units) == 3 && c.Status.Units[2].RescheduledReplicas == nil
	})
	want := map[string]int{"zone-a": 2, "zone-b": 2, "zone-c": 2}
	g.Expect(waitForPods(ctx, ns, podLabels, func(ps []*corev1.Pod) bool {
		return len(ps) == 6 && maps.Equal(servingPerZone(ps, zones), want)
	})).To(Succeed(), "the replicas must come back to zone-c")

	framework.ExpectLossless(ctx, g, rec)
}
