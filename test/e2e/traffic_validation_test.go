package e2e

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Invalid traffic specs are refused when written, through the e2e control
// plane's API server with CAFE's admission webhooks and its Prometheus:
// each error names the field. Nothing of a refused object is stored.
func TestTrafficSpecsAreRefusedWithFieldNamedErrors(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 2*time.Minute)
	a := newTrafficApp(ctx, t, g, "shop")
	// A route of the namespace that does not send to the app's Service.
	other := a.route()
	other.Name = "elsewhere"
	other.Spec.Rules[0].BackendRefs[0].Name = "another-service"
	g.Expect(k8sClient.Create(ctx, other)).To(Succeed())

	analysis := func(mutate func(metric map[string]any)) client.Object {
		metric := map[string]any{
			"name":      "success-rate",
			"query":     successRate,
			"threshold": map[string]any{"operator": "AtLeast", "value": "0.99"},
		}
		mutate(metric)
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": cafev1alpha1.GroupVersion.String(), "kind": "TrafficAnalysis",
			"metadata": map[string]any{"name": "bad", "namespace": a.ns},
			"spec":     map[string]any{"metrics": []any{metric}},
		}}
	}
	deployment := func(mutate func(*cafev1alpha1.TrafficStrategy)) client.Object {
		cd := a.cafeDeployment(cafev1alpha1.PodSetTypeInPlaceSet)
		cd.Name = "bad"
		cd.Spec.Strategy.Traffic = &cafev1alpha1.TrafficStrategy{Route: a.name, Service: a.name, Steps: []cafev1alpha1.TrafficStep{{Group: 0, Weight: ptr.To[int32](10)}}}
		mutate(cd.Spec.Strategy.Traffic)
		return cd
	}
	app := func(route string) client.Object {
		s := trafficStrategy()
		s.Traffic = &cafev1alpha1.TrafficStrategy{Route: route, Service: "bad", Steps: []cafev1alpha1.TrafficStep{{Group: 0, Weight: ptr.To[int32](10)}}}
		return &cafev1alpha1.CafeAppService{
			ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "bad"},
			Spec: cafev1alpha1.CafeAppServiceSpec{
				Template: a.template("v1"),
				Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](trafficReplicas), Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}}, Strategy: s},
			},
		}
	}
	tests := []struct {
		name   string
		object client.Object
		want   []string
	}{
		{"PromQL Prometheus cannot parse", analysis(func(m map[string]any) { m["query"] = `sum(rate(traefik_service_requests_total[10s])` }),
			[]string{"spec.metrics[0].query", "Prometheus"}},
		{"a threshold that is not a number", analysis(func(m map[string]any) { m["threshold"] = map[string]any{"operator": "AtLeast", "value": "high"} }),
			[]string{"spec.metrics[0].threshold.value", "must be a decimal number"}},
		{"a threshold given as a JSON number", analysis(func(m map[string]any) { m["threshold"] = map[string]any{"operator": "AtLeast", "value": 0.99} }),
			[]string{"spec.metrics[0].threshold.value", "must be of type string"}},
		{"an unknown threshold operator", analysis(func(m map[string]any) { m["threshold"] = map[string]any{"operator": ">=", "value": "0.99"} }),
			[]string{"spec.metrics[0].threshold.operator"}},
		{"a weight above 100", deployment(func(t *cafev1alpha1.TrafficStrategy) { t.Steps[0].Weight = ptr.To[int32](150) }),
			[]string{"spec.strategy.traffic.steps[0].weight"}},
		{"a negative weight", deployment(func(t *cafev1alpha1.TrafficStrategy) { t.Steps[0].Weight = ptr.To[int32](-5) }),
			[]string{"spec.strategy.traffic.steps[0].weight"}},
		{"a step after the last group", deployment(func(t *cafev1alpha1.TrafficStrategy) { t.Steps[0].Group = 2 }),
			[]string{"spec.strategy.traffic.steps[0].group", "a step must follow a group before the last"}},
		{"steps without a route", deployment(func(t *cafev1alpha1.TrafficStrategy) { t.Route = "" }),
			[]string{"spec.strategy.traffic.route"}},
		{"steps on a route that does not exist", deployment(func(t *cafev1alpha1.TrafficStrategy) { t.Route = "nope" }),
			[]string{"spec.strategy.traffic.route: HTTPRoute " + a.ns + "/nope does not exist"}},
		{"steps on a route that does not send to the app", deployment(func(t *cafev1alpha1.TrafficStrategy) { t.Route = "elsewhere" }),
			[]string{"spec.strategy.traffic.route: HTTPRoute " + a.ns + "/elsewhere cannot carry steps[0] to Service shop", "no rule of the route sends to the app's Service"}},
		{"an app's steps on a route that does not exist", app("nope"),
			[]string{"spec.workload.strategy.traffic.route: HTTPRoute " + a.ns + "/nope does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := k8sClient.Create(ctx, tt.object)
			g.Expect(err).To(HaveOccurred(), "refused")
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
			stored := tt.object.DeepCopyObject().(client.Object)
			g.Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(tt.object), stored))).To(BeTrue(), "nothing stored")
		})
	}
	// The same steps on the app's own route are admitted.
	g.Expect(k8sClient.Create(ctx, deployment(func(*cafev1alpha1.TrafficStrategy) {}))).To(Succeed())
}
