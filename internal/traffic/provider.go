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

// Finalizer is the finalizer the provider holds on the pods it may route
// to.
func Finalizer(p Provider) string {
	return cafev1alpha1.TrafficFinalizer(p.Name())
}
