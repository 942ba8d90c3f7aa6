package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/config"
	"github.com/cafe-io/cafe/test/framework"
)

func validCafeDeployment(name string) *cafev1alpha1.CafeDeployment {
	labels := map[string]string{"app": name}
	return &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
			},
			Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
		},
	}
}

func TestCafeDeploymentDefaultsAreAppliedByTheAPIServer(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	cd := validCafeDeployment("defaults")
	create(t, g, cd)

	g.Expect(cd.Spec.PodSetType).To(Equal(cafev1alpha1.PodSetTypeInPlaceSet))
	g.Expect(cd.Spec.Topology.UnitType).To(Equal(cafev1alpha1.UnitTypeZone))
	g.Expect(cd.Spec.Strategy.UpgradeType).To(Equal(cafev1alpha1.UpgradeTypeBeta))
	g.Expect(cd.Spec.Strategy.GroupOrder).To(Equal(cafev1alpha1.GroupOrderInterleaved))
	g.Expect(cd.Spec.RevisionHistoryLimit).To(HaveValue(Equal(int32(10))))
	g.Expect(cd.Spec.Strategy.MaxUnavailable).To(HaveValue(Equal(intstr.FromInt32(1))))
	g.Expect(cd.Spec.Template.Labels).To(HaveKeyWithValue("app", "defaults"), "template metadata must survive pruning")
}

// Each invalid spec is refused by the real API server with a message that
// names the offending field.
// trafficWith is a traffic strategy of the app's route and Service with
// steps, each after group 0 unless it says otherwise.
func trafficWith(steps ...cafev1alpha1.TrafficStep) *cafev1alpha1.TrafficStrategy {
	return &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: steps}
}

func TestCafeDeploymentInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	requireAPIServer(t)
	tests := []struct {
		name   string
		mutate func(*cafev1alpha1.CafeDeployment)
		field  string
	}{
		{"a batch size of zero", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.BatchSize = ptr.To(intstr.FromInt32(0)) }, "spec.strategy.batchSize"},
		{"a batch size of 0%", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.BatchSize = ptr.To(intstr.FromString("0%")) }, "spec.strategy.batchSize"},
		{"a batch size over 100%", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.BatchSize = ptr.To(intstr.FromString("150%")) }, "spec.strategy.batchSize"},
		{"a duplicate unit", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Topology.Values = []string{"zone-a", "zone-a"} }, "spec.topology.values"},
		{"no topology", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Topology.Values = nil }, "spec.topology"},
		{"an empty unit list", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Topology.Values = []string{}
			c.Spec.Topology.UnitType = cafev1alpha1.UnitTypeCell
		}, "spec.topology.values"},
		{"an unknown unit in unitReplicas", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Topology.UnitReplicas = map[string]intstr.IntOrString{"zone-x": intstr.FromInt32(1)}
		}, "spec.topology"},
		{"unitReplicas exceeding replicas", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Topology.UnitReplicas = map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(4), "zone-b": intstr.FromInt32(4)}
		}, "spec.topology.unitReplicas"},
		{"minAvailable above replicas", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.MinAvailable = ptr.To(intstr.FromInt32(7)) }, "spec.strategy.minAvailable"},
		{"volumeClaimTemplates outside StatefulSet mode", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
		}, "spec.volumeClaimTemplates"},
		{"an unknown podSetType", func(c *cafev1alpha1.CafeDeployment) { c.Spec.PodSetType = "DaemonSet" }, "spec.podSetType"},
		{"an unknown unitType", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Topology.UnitType = "Region" }, "spec.topology.unitType"},
		{"an unknown upgradeType", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.UpgradeType = "Canary" }, "spec.strategy.upgradeType"},
		{"an unknown groupOrder", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.GroupOrder = "Random" }, "spec.strategy.groupOrder"},
		{"a group naming an unknown unit", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Groups = []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(6), Units: []string{"zone-x"}}}
		}, "spec.strategy.groups"},
		{"a group of zero pods", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Groups = []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(0)}}
		}, "spec.strategy.groups[0].replicas"},
		{"a negative maxUnavailable", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.MaxUnavailable = ptr.To(intstr.FromInt32(-1)) }, "spec.strategy.maxUnavailable"},
		{"negative replicas", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Replicas = ptr.To[int32](-1) }, "spec.replicas"},
		{"a negative minReadySeconds", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.MinReadySeconds = -5 }, "spec.strategy.minReadySeconds"},
		{"a malformed percentage", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.MinAvailable = ptr.To(intstr.FromString("half")) }, "spec.strategy.minAvailable"},
		{"a traffic weight above 100", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](101)})
		}, "spec.strategy.traffic.steps[0].weight"},
		{"a negative traffic weight", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](-1)})
		}, "spec.strategy.traffic.steps[0].weight"},
		{"a traffic step with both weight and headers", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](10), Headers: []cafev1alpha1.TrafficHeader{{Name: "x-canary", Value: "1"}}})
		}, "spec.strategy.traffic.steps[0]"},
		{"a traffic step with neither", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{DurationSeconds: ptr.To[int32](60)})
		}, "spec.strategy.traffic.steps[0]"},
		{"a header name with a space", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Headers: []cafev1alpha1.TrafficHeader{{Name: "x canary", Value: "1"}}})
		}, "spec.strategy.traffic.steps[0].headers[0].name"},
		{"two traffic steps for one group", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](10)}, cafev1alpha1.TrafficStep{Weight: ptr.To[int32](20)})
		}, "spec.strategy.traffic.steps[1]"},
		{"a traffic step of zero seconds", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](10), DurationSeconds: ptr.To[int32](0)})
		}, "spec.strategy.traffic.steps[0].durationSeconds"},
		{"traffic without a step", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.Traffic = trafficWith() }, "spec.strategy.traffic.steps"},
		{"a traffic service whose canary name would not fit", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](10)})
			c.Spec.Strategy.Traffic.Service = strings.Repeat("s", 57)
		}, "spec.strategy.traffic.service"},
		{"endpoints in ReplicaSet mode", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.PodSetType = cafev1alpha1.PodSetTypeReplicaSet
			c.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: "web"}
		}, "spec.endpoints"},
		{"endpoints with traffic steps", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](10)})
			c.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: "web"}
		}, "spec.endpoints"},
		{"endpoints naming no Service", func(c *cafev1alpha1.CafeDeployment) { c.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{} }, "spec.endpoints.service"},
		{"endpoints naming an invalid Service", func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: "Web_1"}
		}, "spec.endpoints.service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			cd := validCafeDeployment("invalid")
			tt.mutate(cd)
			err := tryCreate(cd)
			expectInvalid(g, err, tt.field)
		})
	}
}

func TestCafeDeploymentPodSetTypeIsImmutable(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	cd := validCafeDeployment("immutable")
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, cd) })

	cd.Spec.PodSetType = cafev1alpha1.PodSetTypeReplicaSet
	err := k8sClient.Update(ctx, cd)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.podSetType"))
	g.Expect(err.Error()).To(ContainSubstring("immutable"))
}

// The samples in config/samples are what users copy first: the API server
// must accept them as they are.
func TestSamplesAreAcceptedByTheAPIServer(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	paths, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "config", "samples", "cafe_*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(paths).To(HaveLen(4))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		g.Expect(err).NotTo(HaveOccurred())
		objs, err := config.Decode(data)
		g.Expect(err).NotTo(HaveOccurred())
		for _, o := range objs {
			o.SetNamespace("default")
			g.Expect(k8sClient.Create(context.Background(), o, client.DryRunAll)).To(Succeed(), "%s", p)
		}
	}
}
