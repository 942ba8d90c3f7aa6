package trafficprovider_test

import (
	"context"
	"fmt"
	"maps"
	"strings"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/managermetrics"
)

// finalizer is the gateway provider's.
var finalizer = cafev1alpha1.TrafficFinalizer(gateway.Name)

// gatewayOf is a Gateway of the class, with one HTTP listener.
func gatewayOf(ns, name, class string) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(class),
			Listeners:        []gatewayv1.Listener{{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}},
		},
	}
}

// serviceOf is a Service selecting the labels.
func serviceOf(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

// routeOf is an HTTPRoute of the Gateway sending everything to the
// Services.
func routeOf(ns, name, gw string, services ...string) *gatewayv1.HTTPRoute {
	var backends []gatewayv1.HTTPBackendRef
	for _, svc := range services {
		backends = append(backends, gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(svc), Port: ptr.To(gatewayv1.PortNumber(80))},
		}})
	}
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: gatewayv1.ObjectName(gw)}}},
			Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: backends}},
		},
	}
}

// podOf is a pod with the labels; when gated, a pod CAFE manages: its
// readiness gate and the label every pod CAFE creates carries (the manager
// caches no other pod).
func podOf(ns, name string, labels map[string]string, gated bool) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: maps.Clone(labels)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
	}
	if gated {
		pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: cafev1alpha1.TrafficReadyCondition}}
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[cafev1alpha1.RevisionHashLabel] = "v1"
	}
	return pod
}

// webApp is the usual setup of a test: a Gateway of our class, a Service
// web selecting app=web and an HTTPRoute sending to it.
func webApp(ctx context.Context, g Gomega, c client.Client, ns string) {
	g.Expect(c.Create(ctx, gatewayOf(ns, "gw", ourClass))).To(Succeed())
	g.Expect(c.Create(ctx, serviceOf(ns, "web", map[string]string{"app": "web"}))).To(Succeed())
	g.Expect(c.Create(ctx, routeOf(ns, "web", "gw", "web"))).To(Succeed())
}

// startPod creates the pod and reports, as a kubelet would, its IP and
// (when gate is not empty) its traffic-ready condition.
func startPod(ctx context.Context, g Gomega, c client.Client, pod *corev1.Pod, ip string, gate corev1.ConditionStatus) *corev1.Pod {
	g.Expect(c.Create(ctx, pod)).To(Succeed())
	status := map[string]any{"podIP": ip, "podIPs": []map[string]string{{"ip": ip}}}
	if gate != "" {
		status["conditions"] = []corev1.PodCondition{gateCondition(gate)}
	}
	g.Expect(framework.PatchPodStatus(ctx, c, pod, status)).To(Succeed())
	return pod
}

func gateCondition(status corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: cafev1alpha1.TrafficReadyCondition, Status: status, Reason: "Test", LastTransitionTime: metav1.Now()}
}

// setGate opens or closes the pod's gate, as CAFE does.
func setGate(ctx context.Context, g Gomega, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus) {
	g.Expect(framework.PatchPodStatus(ctx, c, pod, map[string]any{"conditions": []corev1.PodCondition{gateCondition(status)}})).To(Succeed())
}

// finalizers reads the pod's finalizers from the API server.
func finalizers(ctx context.Context, c client.Client, pod *corev1.Pod) func(Gomega) []string {
	return func(g Gomega) []string {
		got := &corev1.Pod{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(pod), got)).To(Succeed())
		return got.Finalizers
	}
}

// instanceOf is a classic instance with the labels on host, serving on
// port (its package is never fetched: no agent runs in these tests).
func instanceOf(ns, name, host string, labels map[string]string, port int32) *cafev1alpha1.ClassicInstance {
	return &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: maps.Clone(labels)},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: cafev1alpha1.ClassicArtifact{
			URL: "http://127.0.0.1:1/app.tar.gz", SHA256: strings.Repeat("a", 64), Command: []string{"bin/app"}, Port: port,
		}},
	}
}

// startInstance creates the instance and, when address is not empty,
// reports it as the host's agent would.
func startInstance(ctx context.Context, g Gomega, c client.Client, inst *cafev1alpha1.ClassicInstance, address string) *cafev1alpha1.ClassicInstance {
	g.Expect(c.Create(ctx, inst)).To(Succeed())
	if address != "" {
		patch := client.MergeFrom(inst.DeepCopy())
		inst.Status.Address = address
		g.Expect(c.Status().Patch(ctx, inst, patch)).To(Succeed())
	}
	return inst
}

// setInstanceGate sets the instance's traffic gate, as CAFE's ClassicSet
// does.
func setInstanceGate(ctx context.Context, g Gomega, c client.Client, inst *cafev1alpha1.ClassicInstance, gate cafev1alpha1.ClassicTrafficGate) {
	patch := []byte(fmt.Sprintf(`{"spec":{"trafficGate":%q}}`, gate))
	g.Expect(c.Patch(ctx, inst, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

// instanceFinalizers reads the instance's finalizers from the API server.
func instanceFinalizers(ctx context.Context, c client.Client, inst *cafev1alpha1.ClassicInstance) func(Gomega) []string {
	return func(g Gomega) []string {
		got := &cafev1alpha1.ClassicInstance{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(inst), got)).To(Succeed())
		return got.Finalizers
	}
}

// metric reads a series of the manager's metrics (the process-wide
// controller-runtime registry the suite's manager serves): the value of
// the series of name whose labels include labels, 0 if none.
func metric(g Gomega, name string, labels map[string]string) float64 {
	m := managermetrics.Series(g, name, labels)
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// confirmations is cafe_traffic_provider_confirmations_total of the
// gateway provider for the result.
func confirmations(g Gomega, result string) float64 {
	return metric(g, "cafe_traffic_provider_confirmations_total", map[string]string{"provider": gateway.Name, "result": result})
}

// waiting is cafe_traffic_provider_pods_waiting of the gateway provider.
func waiting(g Gomega) float64 {
	return metric(g, "cafe_traffic_provider_pods_waiting", map[string]string{"provider": gateway.Name})
}

// instanceConfirmations is cafe_traffic_provider_instance_confirmations_total
// of the gateway provider for the result.
func instanceConfirmations(g Gomega, result string) float64 {
	return metric(g, "cafe_traffic_provider_instance_confirmations_total", map[string]string{"provider": gateway.Name, "result": result})
}
