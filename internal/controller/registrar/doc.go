// Package registrar registers the pods and classic instances of published
// Services (label registry.cafe.io/publish: "true") in CAFE's east-west
// service registry (package internal/registry: a real etcd, key layout
// there).
//
// For each Service, the registrations are the addresses (IP and port) of:
//   - the CAFE pods the Service selects that are Ready and not being
//     deleted, one per TCP port of the Service (a named targetPort is the
//     container port of that name), zone from the pod's node;
//   - the ready endpoints of CAFE's own EndpointSlices of the Service
//     (package classicendpoints: classic instances whose gate is open,
//     healthy, on a Ready host).
//
// A pod's readiness includes CAFE's traffic gate (cafe.io/traffic-ready):
// when a release closes the gate the pod turns unready and is
// deregistered, as an EndpointSlice drops it; the registry traffic
// provider (internal/traffic/registry) then waits for every consumer to
// acknowledge that before it lets the pod or the instance go.
//
// The Reconciler is level-based: it computes the registrations from the
// cache (Registrations, pure) and makes the registry hold exactly those,
// with one transaction that writes every change together with the
// service's revision key, guarded by that key's mod_revision (a write made
// from a stale read fails and is retried). Changes in the registry itself
// (someone deleted a key; a Service deleted while CAFE was down) wake the
// Service too: a watch of the registry's services prefix, begun with a
// read of every service there, feeds the controller.
package registrar
