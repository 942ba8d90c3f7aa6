package traffic

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Provider is one traffic system that may route to CAFE's pods. The
// generic controller asks it two questions; it writes nothing itself.
type Provider interface {
	// Name is the finalizer suffix: the provider holds
	// traffic.cafe.io/<Name> on the pods it may route to. It is a DNS
	// label ("gateway", "registry") and never changes: a renamed provider
	// would leave its old finalizers behind.
	Name() string

	// Serves reports whether the traffic system may route to the pod, so
	// that the pod must carry the provider's finalizer while its gate is
	// open. It reads configuration (from the manager's cache), not the
	// traffic system, and is asked only of live pods whose gate is open.
	Serves(ctx context.Context, pod *corev1.Pod) (bool, error)

	// Routes asks the traffic system itself (its API or admin endpoint,
	// never a timer) whether the pod is still among the servers it sends
	// requests to. where says what was asked and what it answered, for logs
	// and events ("Traefik at http://127.0.0.1:9000 sends to
	// 10.0.0.7:8080"). An error means no answer: the finalizer stays.
	Routes(ctx context.Context, pod *corev1.Pod) (routed bool, where string, err error)
}

// InstanceProvider is implemented by a Provider whose traffic system may
// also route to ClassicInstances (processes on classic hosts, listed
// behind Services by CAFE's own EndpointSlices). The generic controller
// then keeps the same finalizer, traffic.cafe.io/<Name>, on the instances
// too, by the same rules as on pods: the instance's gate is its
// spec.trafficGate (ClassicInstance.GateOpen), and CAFE's ClassicSet
// waits for every traffic.cafe.io/* finalizer on an instance before it
// changes its package or deletes it.
type InstanceProvider interface {
	// ServesInstance is Serves for an instance: whether the traffic
	// system may route to it, from configuration, asked of live instances
	// whose gate is open. It may be wrong only towards true.
	ServesInstance(ctx context.Context, inst *cafev1alpha1.ClassicInstance) (bool, error)

	// RoutesInstance is Routes for an instance: a question to the traffic
	// system itself whether it still sends requests to the instance. An
	// instance is an address and a port (status.address, "<host
	// address>:<port>"): instances of other apps share the host's IP, so
	// an answer about the IP alone says nothing about this instance. An
	// error means no answer: the finalizer stays.
	RoutesInstance(ctx context.Context, inst *cafev1alpha1.ClassicInstance) (routed bool, where string, err error)
}

// InstanceWatcher is implemented by an InstanceProvider whose
// ServesInstance answer depends on objects other than the instance: the
// counterpart of Watcher for the controller of instances.
type InstanceWatcher interface {
	// InstanceWatches are added to the provider's controller of
	// instances. Each handler enqueues the ClassicInstances whose
	// ServesInstance answer the object's change may have changed.
	InstanceWatches() []Watch
}

// Watcher is implemented by a Provider whose Serves answer depends on
// objects other than the pod (routes, services, registrations): their
// changes must wake the controller for the pods they concern.
type Watcher interface {
	// Watches are added to the provider's controller. Each handler
	// enqueues the pods (reconcile requests by namespace and name) whose
	// Serves answer the object's change may have changed.
	Watches() []Watch
}

// Watch is one watch a Watcher adds: changes of Object's kind go to
// Handler.
type Watch struct {
	Object  client.Object
	Handler handler.EventHandler
}

// Finalizer is the finalizer the provider holds on the pods (and, for an
// InstanceProvider, the ClassicInstances) it may route to.
func Finalizer(p Provider) string {
	return cafev1alpha1.TrafficFinalizer(p.Name())
}
