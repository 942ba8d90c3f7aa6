package v1alpha1_test

import (
	"context"
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// An empty NodeLifecyclePolicy is defaulted by the API server to exactly what
// the controller uses when no policy exists (DefaultNodeLifecyclePolicySpec).
func TestNodeLifecyclePolicyDefaultsMatchTheGoDefaults(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": cafev1alpha1.GroupVersion.String(), "kind": "NodeLifecyclePolicy",
		"metadata": map[string]any{"name": cafev1alpha1.NodeLifecyclePolicyName},
		"spec":     map[string]any{},
	}}
	g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, u) })

	got := &cafev1alpha1.NodeLifecyclePolicy{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(got.Spec).To(Equal(cafev1alpha1.DefaultNodeLifecyclePolicySpec()))
}

func policyWith(mutate func(spec map[string]any)) *unstructured.Unstructured {
	spec := map[string]any{}
	mutate(spec)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": cafev1alpha1.GroupVersion.String(), "kind": "NodeLifecyclePolicy",
		"metadata": map[string]any{"name": cafev1alpha1.NodeLifecyclePolicyName},
		"spec":     spec,
	}}
}

// Each bad policy is refused by the API server with an error naming the field.
func TestNodeLifecyclePolicyInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	requireAPIServer(t)
	tests := []struct {
		name   string
		obj    *unstructured.Unstructured
		field  string
		reason string
	}{
		{"an unknown signal name", policyWith(func(s map[string]any) { s["signals"] = []any{"Ready", "Heartbeat"} }), "spec.signals[1]", "Unsupported value"},
		{"no signal at all", policyWith(func(s map[string]any) { s["signals"] = []any{} }), "spec.signals", ""},
		{"zero signals for Failed", policyWith(func(s map[string]any) { s["failed"] = map[string]any{"minSignals": 0} }), "spec.failed.minSignals", ""},
		{"more signals for Failed than exist", policyWith(func(s map[string]any) { s["failed"] = map[string]any{"minSignals": 6} }), "spec.failed.minSignals", ""},
		{"more signals for Failed than are enabled", policyWith(func(s map[string]any) {
			s["signals"] = []any{"Ready", "Lease"}
			s["failed"] = map[string]any{"minSignals": 3}
		}), "spec.failed.minSignals", "number of signals"},
		{"Failed easier than Suspect", policyWith(func(s map[string]any) {
			s["suspect"] = map[string]any{"minSignals": 3}
			s["failed"] = map[string]any{"minSignals": 2}
		}), "spec.failed.minSignals", "at least spec.suspect.minSignals"},
		{"a negative duration", policyWith(func(s map[string]any) { s["suspect"] = map[string]any{"minSignals": 1, "forSeconds": -1} }), "spec.suspect.forSeconds", ""},
		{"a lease threshold below 5 s", policyWith(func(s map[string]any) { s["leaseStaleSeconds"] = 1 }), "spec.leaseStaleSeconds", ""},
		{"a zone guard over 100%", policyWith(func(s map[string]any) { s["zoneGuard"] = map[string]any{"maxUnhealthyPercent": 150} }), "spec.zoneGuard.maxUnhealthyPercent", ""},
		{"a zone guard window of zero", policyWith(func(s map[string]any) { s["zoneGuard"] = map[string]any{"windowSeconds": 0} }), "spec.zoneGuard.windowSeconds", ""},
		{"a zone guard window over a day", policyWith(func(s map[string]any) { s["zoneGuard"] = map[string]any{"windowSeconds": 86401} }), "spec.zoneGuard.windowSeconds", ""},
		{"a zero migration rate", policyWith(func(s map[string]any) { s["migration"] = map[string]any{"maxPodsPerMinute": 0} }), "spec.migration.maxPodsPerMinute", ""},
		{"an unknown freshLease rule", policyWith(func(s map[string]any) { s["migration"] = map[string]any{"freshLease": "Always"} }), "spec.migration.freshLease", "Unsupported value"},
		{"an unknown mode", policyWith(func(s map[string]any) { s["mode"] = "DryRun" }), "spec.mode", "Unsupported value"},
		{"a probe failure threshold of zero", policyWith(func(s map[string]any) { s["probe"] = map[string]any{"failureThreshold": 0} }), "spec.probe.failureThreshold", ""},
		{"a node condition without a type", policyWith(func(s map[string]any) { s["nodeConditions"] = []any{map[string]any{"status": "True"}} }), "spec.nodeConditions[0].type", ""},
		{"a node condition with a bad status", policyWith(func(s map[string]any) {
			s["nodeConditions"] = []any{map[string]any{"type": "KernelDeadlock", "status": "Yes"}}
		}), "spec.nodeConditions[0].status", "Unsupported value"},
		{"a policy not named default", func() *unstructured.Unstructured {
			u := policyWith(func(map[string]any) {})
			u.SetName("strict")
			return u
		}(), "metadata.name", "named default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tryCreate(tt.obj)
			expectInvalid(g, err, tt.field)
			g.Expect(err.Error()).To(ContainSubstring(tt.reason))
		})
	}
}

func report(mutate func(*cafev1alpha1.NodeHealthReport)) *cafev1alpha1.NodeHealthReport {
	r := &cafev1alpha1.NodeHealthReport{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "report-"},
		Spec:       cafev1alpha1.NodeHealthReportSpec{NodeName: "node-a", Source: "zabbix", Reason: "DiskLatency"},
	}
	mutate(r)
	return r
}

// The schema part of report validation (the node's existence is checked by
// the admission webhook, tested with the webhook).
func TestNodeHealthReportInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	requireAPIServer(t)
	tests := []struct {
		name  string
		obj   *cafev1alpha1.NodeHealthReport
		field string
	}{
		{"a report without a source", report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.Source = "" }), "spec.source"},
		{"a report without a node", report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.NodeName = "" }), "exactly one of spec.nodeName and spec.hostName must be set"},
		{"a report about a node and a host", report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.HostName = "vm-1" }), "exactly one of spec.nodeName and spec.hostName must be set"},
		{"a report without a reason", report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.Reason = "" }), "spec.reason"},
		{"a reason that is a sentence", report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.Reason = "disk is slow" }), "spec.reason"},
		{"an unknown state", report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.State = "Sick" }), "spec.state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tryCreate(tt.obj)
			expectInvalid(g, err, tt.field)
		})
	}
}

func TestNodeHealthReportNodeNameIsImmutableAndStateDefaultsToUnhealthy(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	r := report(func(*cafev1alpha1.NodeHealthReport) {})
	g.Expect(k8sClient.Create(ctx, r)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, r) })
	g.Expect(r.Spec.State).To(Equal(cafev1alpha1.NodeReportUnhealthy))

	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"nodeName": "node-b"}})
	err := k8sClient.Patch(ctx, r, client.RawPatch("application/merge-patch+json", patch))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.nodeName is immutable"))

	// Nor can it move to a classic host.
	patch, _ = json.Marshal(map[string]any{"spec": map[string]any{"nodeName": nil, "hostName": "vm-1"}})
	err = k8sClient.Patch(ctx, r, client.RawPatch("application/merge-patch+json", patch))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("a report cannot move between a node and a classic host"))

	h := report(func(r *cafev1alpha1.NodeHealthReport) { r.Spec.NodeName, r.Spec.HostName = "", "vm-1" })
	g.Expect(k8sClient.Create(ctx, h)).To(Succeed(), "a report about a classic host")
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, h) })
	patch, _ = json.Marshal(map[string]any{"spec": map[string]any{"hostName": "vm-2"}})
	err = k8sClient.Patch(ctx, h, client.RawPatch("application/merge-patch+json", patch))
	g.Expect(err).To(MatchError(ContainSubstring("spec.hostName is immutable")))
}
