// Package traffic is the contract between CAFE's lossless pod-operation
// protocol (package lossless) and the traffic systems that route to pods
// besides the EndpointSlices: a Gateway API gateway, a service registry, a
// mesh. Each such system is a Provider, and one generic controller
// (internal/controller/trafficprovider) runs any Provider over the pods
// that carry CAFE's readiness gate cafe.io/traffic-ready (and, for an
// InstanceProvider, over the ClassicInstances).
//
// The whole protocol between CAFE and a provider is one finalizer per
// provider on each pod, traffic.cafe.io/<Provider.Name>:
//
//	gate True, pod live, Serves ──► finalizer added (before the traffic
//	                                system may send to the pod)
//	gate False, or pod deleting,
//	or no longer Serves         ──► Routes asked of the traffic system
//	                                itself until it no longer lists the
//	                                pod; only then is the finalizer removed
//
// CAFE closes the gate and then waits for every traffic.cafe.io/*
// finalizer to go (lossless.TrafficHolders) before it touches the pod, so
// a provider needs no change in CAFE, and CAFE needs none for a new
// provider. The provider adds and removes only its own finalizer; it never
// writes anything else on the pod.
//
// Invariants every Provider keeps:
//   - Routes is a question to the traffic system (its API or admin
//     endpoint), never a timer or a guess: a finalizer removed on a guess
//     is a request lost. An error (the system is unreachable) is "still
//     routed" to the controller, which keeps the finalizer and asks again.
//   - Serves may be wrong only towards true: an extra finalizer costs one
//     Routes question, a missing one can lose requests.
//   - All state is on the pod (the finalizer) and in the traffic system; a
//     provider that crashes at any line resumes from them.
//
// # Classic instances
//
// A traffic system that may also route to ClassicInstances (processes on
// classic hosts, which CAFE lists behind Services in EndpointSlices of its
// own) implements InstanceProvider too, and the same controller keeps the
// same finalizer on the instances by the same table: the instance's gate
// is spec.trafficGate (Open, or DrainForUpdate and DrainForDelete, which
// close it), and CAFE's ClassicSet waits for every traffic.cafe.io/*
// finalizer on an instance before it changes its package or deletes it.
// The invariants above hold unchanged, with one more for RoutesInstance:
// an instance is an address and a port, not an IP. Instances of different
// apps share their host's IP, so RoutesInstance matches both: a system
// that still sends to the host on another port (another app's instance)
// does not route to this one.
package traffic
