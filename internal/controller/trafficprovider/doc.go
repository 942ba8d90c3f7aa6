// Package trafficprovider runs a traffic.Provider: it keeps the provider's
// finalizer traffic.cafe.io/<name> on the pods the provider's traffic
// system may route to, and removes it only once that system itself says it
// no longer routes to the pod. One Reconciler per provider; the provider
// decides, the Reconciler writes.
//
// Only pods that list CAFE's readiness gate cafe.io/traffic-ready are
// looked at. Any other pod (a native Deployment's) is outside the lossless
// protocol: nothing would ever wait for the finalizer, so none is added.
//
// The decision, from the pod and the provider's answers:
//
//	finalizer  gate open, live, Serves   action
//	absent     yes                       add the finalizer
//	absent     no                        nothing
//	present    yes                       nothing
//	present    no                        ask Routes: not routed → remove it;
//	                                     routed or no answer → keep it and
//	                                     ask again after Poll
//
// Both writes patch metadata.finalizers alone, with the pod's
// resourceVersion as an optimistic lock, so a decision is never written
// over a pod it was not made from. All state is the finalizer on the pod:
// a controller that crashes at any line decides the same again.
//
// The finalizer goes on when the gate opens, which is before the gateway
// can route to the pod (the pod turns Ready with the gate, then its
// EndpointSlice, then the gateway's configuration follow). A gate closed
// again within the few milliseconds before the finalizer is written would
// leave a pod the gateway may pick up from a late slice update unguarded;
// the EndpointSlice check of the drain covers most of that window.
//
// # Classic instances
//
// For a provider that implements traffic.InstanceProvider, an
// InstanceReconciler (controller traffic-<provider>-instances) runs the
// same decision over ClassicInstances, with ServesInstance and
// RoutesInstance as the questions. Every instance is in the protocol (its
// gate is spec.trafficGate, open unless DrainForUpdate or DrainForDelete);
// CAFE's ClassicSet waits for every traffic.cafe.io/* finalizer on an
// instance before it changes its package or deletes it, and the host's
// agent stops a deleted instance's process only once the object is gone.
// Both reconcilers are one implementation (guard), given per kind what
// the decision reads of the object (kind: its gate, whether it is in the
// protocol, which updates matter: for instances also status.address);
// instances count in metrics of their own
// (cafe_traffic_provider_instance_confirmations_total,
// cafe_traffic_provider_instances_waiting,
// cafe_traffic_provider_instance_release_seconds).
package trafficprovider
