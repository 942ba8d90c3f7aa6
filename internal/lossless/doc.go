// Package lossless implements CAFE's lossless pod-operation protocol, the
// one rule every controller that updates, deletes or recreates a pod obeys:
//
//  1. set the pod condition cafe.io/traffic-ready False (its reason records
//     why: DrainForUpdate or DrainForDelete), so the pod turns NotReady and
//     the endpointslice controller stops routing to it;
//  2. wait until no EndpointSlice lists the pod as ready or serving AND no
//     traffic.cafe.io/* finalizer (held by a traffic provider: load
//     balancer, service registry, mesh) remains on it;
//  3. operate;
//  4. when the pod is ready again and minReadySeconds have passed, set the
//     condition True.
//
// The state of the protocol lives on the pod itself (the gate condition and
// its reason), so a controller that crashes at any line resumes where it
// was. Nothing here waits on a timer: step 2 is decided from the API.
package lossless
