package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// analysisWith is a valid TrafficAnalysis (one success-rate metric) after
// mutate.
func analysisWith(mutate func(spec map[string]any)) *unstructured.Unstructured {
	spec := map[string]any{
		"metrics": []any{map[string]any{
			"name":      "success-rate",
			"query":     `sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*",code!~"5.."}[30s])) / sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*"}[30s]))`,
			"threshold": map[string]any{"operator": "AtLeast", "value": "0.99"},
		}},
	}
	mutate(spec)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": cafev1alpha1.GroupVersion.String(), "kind": "TrafficAnalysis",
		"metadata": map[string]any{"name": "success", "namespace": "default"},
		"spec":     spec,
	}}
}

// firstMetric edits the first metric of a spec made by analysisWith.
func firstMetric(spec map[string]any) map[string]any {
	return spec["metrics"].([]any)[0].(map[string]any)
}

func TestTrafficAnalysisIsDefaultedToThreeMeasurementsTenSecondsApartWithNoFailureTolerated(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	u := analysisWith(func(map[string]any) {})
	create(t, g, u)
	got := &cafev1alpha1.TrafficAnalysis{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(got.Spec.IntervalSeconds).To(BeEquivalentTo(10))
	g.Expect(got.Spec.Count).To(BeEquivalentTo(3))
	g.Expect(got.Spec.FailureLimit).To(BeEquivalentTo(0))
	g.Expect(got.Spec.Metrics[0].Threshold).To(Equal(cafev1alpha1.TrafficThreshold{Operator: cafev1alpha1.ThresholdAtLeast, Value: "0.99"}))
}

// Each bad analysis is refused by the API server with an error naming the
// field.
func TestTrafficAnalysisInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	requireAPIServer(t)
	tests := []struct {
		name   string
		mutate func(spec map[string]any)
		field  string
		reason string
	}{
		{"a threshold that is not a number", func(s map[string]any) {
			firstMetric(s)["threshold"] = map[string]any{"operator": "AtLeast", "value": "ninety-nine percent"}
		}, "spec.metrics[0].threshold.value", "must be a decimal number"},
		{"a threshold given as a JSON number, not a string", func(s map[string]any) {
			firstMetric(s)["threshold"] = map[string]any{"operator": "AtLeast", "value": 0.99}
		}, "spec.metrics[0].threshold.value", "must be of type string"},
		{"a percentage sign", func(s map[string]any) {
			firstMetric(s)["threshold"] = map[string]any{"operator": "AtLeast", "value": "99%"}
		}, "spec.metrics[0].threshold.value", "must be a decimal number"},
		{"an unknown operator", func(s map[string]any) {
			firstMetric(s)["threshold"] = map[string]any{"operator": ">=", "value": "0.99"}
		}, "spec.metrics[0].threshold.operator", "Unsupported value"},
		{"no threshold", func(s map[string]any) { delete(firstMetric(s), "threshold") }, "spec.metrics[0].threshold", "Required value"},
		{"an empty query", func(s map[string]any) { firstMetric(s)["query"] = "" }, "spec.metrics[0].query", ""},
		{"a metric name with spaces", func(s map[string]any) { firstMetric(s)["name"] = "Success Rate" }, "spec.metrics[0].name", ""},
		{"two metrics of one name", func(s map[string]any) {
			s["metrics"] = append(s["metrics"].([]any), firstMetric(s))
		}, "spec.metrics[1]", "Duplicate value"},
		{"no metric", func(s map[string]any) { s["metrics"] = []any{} }, "spec.metrics", ""},
		{"a zero interval", func(s map[string]any) { s["intervalSeconds"] = 0 }, "spec.intervalSeconds", ""},
		{"a zero count", func(s map[string]any) { s["count"] = 0 }, "spec.count", ""},
		{"a negative failure limit", func(s map[string]any) { s["failureLimit"] = -1 }, "spec.failureLimit", ""},
		{"a failure limit that tolerates every measurement", func(s map[string]any) {
			s["count"], s["failureLimit"] = 3, 3
		}, "spec", "spec.failureLimit must be less than spec.count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tryCreate(analysisWith(tt.mutate))
			expectInvalid(g, err, tt.field)
			g.Expect(err.Error()).To(ContainSubstring(tt.reason))
		})
	}
}
