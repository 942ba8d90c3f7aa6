package watchrec

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	testNamespace   = "ns"
	registryFinal   = "traffic.cafe.io/registry"
	trafficGateType = corev1.PodConditionType("cafe.io/traffic-ready")
)

// stream builds a synthetic event log: every event gets the next resource version and
// sequence number, like a recorder that saw the writes one by one.
type stream struct {
	events []Event
	rv     uint64
}

func newStream() *stream { return &stream{rv: 100} }

func (s *stream) add(ev Event) *stream {
	s.rv++
	ev.ResourceVersion = s.rv
	ev.Seq = uint64(len(s.events) + 1)
	s.events = append(s.events, ev)
	return s
}

func (s *stream) pod(t EventType, p *corev1.Pod) *stream {
	p.ResourceVersion = strconv.FormatUint(s.rv+1, 10)
	return s.add(Event{Type: t, Pod: p})
}

func (s *stream) slice(t EventType, es *discoveryv1.EndpointSlice) *stream {
	es.ResourceVersion = strconv.FormatUint(s.rv+1, 10)
	return s.add(Event{Type: t, EndpointSlice: es})
}

func (s *stream) gap() *stream {
	return s.add(Event{Type: Gap, Message: "the Pod watch expired"})
}

// podOpt changes a pod under construction.
type podOpt func(*corev1.Pod)

// pod builds a running pod with image v1, Ready and traffic-ready, no finalizers.
func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNamespace,
			Name:      name,
			UID:       types.UID("uid-" + name),
			Labels:    map[string]string{"app": "web"},
		},
		Spec: corev1.PodSpec{
			NodeName:       "node-a",
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: trafficGateType}},
			Containers:     []corev1.Container{{Name: "app", Image: "web:v1"}},
		},
	}
	withReady(true)(p)
	for _, o := range opts {
		o(p)
	}
	return p
}

func withImage(image string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Image = image }
}

// withReady sets both the traffic gate and the Ready condition it controls.
func withReady(ready bool) podOpt {
	return func(p *corev1.Pod) {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: trafficGateType, Status: status},
			{Type: corev1.PodReady, Status: status},
		}
	}
}

func withFinalizers(f ...string) podOpt {
	return func(p *corev1.Pod) { p.Finalizers = f }
}

func withDeletionTimestamp() podOpt {
	return func(p *corev1.Pod) {
		ts := metav1.NewTime(metav1.Now().Time)
		p.DeletionTimestamp = &ts
	}
}

func withLabels(l map[string]string) podOpt {
	return func(p *corev1.Pod) { p.Labels = l }
}

func withUID(uid string) podOpt {
	return func(p *corev1.Pod) { p.UID = types.UID(uid) }
}

func withNodeName(node string) podOpt {
	return func(p *corev1.Pod) { p.Spec.NodeName = node }
}

// endpointSlice builds a slice named name of the Service "web".
func endpointSlice(name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNamespace,
			Name:      name,
			Labels:    map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
}

// endpoint builds the endpoint of pod podName (with the UID pod gives it) and the given
// conditions; nil leaves a condition unset.
func endpoint(podName string, ready, serving *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{"10.0.0.1"},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: boolPtr(false)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: testNamespace, Name: podName, UID: types.UID("uid-" + podName)},
	}
}

// readyEndpoint is what the endpointslice controller writes for a Ready pod.
func readyEndpoint(podName string) discoveryv1.Endpoint {
	return endpoint(podName, boolPtr(true), boolPtr(true))
}

// drainedEndpoint is what it writes for a pod that is not Ready.
func drainedEndpoint(podName string) discoveryv1.Endpoint {
	return endpoint(podName, boolPtr(false), boolPtr(false))
}

func boolPtr(b bool) *bool { return &b }
