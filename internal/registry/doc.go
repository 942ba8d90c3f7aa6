// Package registry is CAFE's service registry for east-west traffic: the
// registry that pods and classic instances of an app are found through by
// the apps that call them (consumers, with client-side load balancing).
// It is a real etcd (a separate instance from the cluster's), with the key
// layout below; this package holds the layout, the values, and the
// consumer's side (Consumer: watch a service's instances, pick one per
// call, acknowledge every registry revision applied).
//
// # Key layout
//
// Everything lives under Prefix, /cafe/registry/v1/:
//
//	services/<namespace>/<service>/instances/<ip>:<port>  Registration (JSON)
//	services/<namespace>/<service>/revision               the service's change marker
//	consumers/<namespace>/<service>/<consumer>            Ack (JSON), under the consumer's lease
//
// Registrations are written by CAFE's registrar (package
// internal/controller/registrar) from the Service's EndpointSlices: an
// endpoint is registered while it is ready (a pod's readiness includes
// CAFE's traffic gate; a classic instance's is its gate and its health
// check), for every port of the slice. Every transaction that changes a
// service's instances also writes its revision key, so that key's
// mod_revision is the revision of the service's latest change. A
// registration carries no lease: the registry mirrors what Kubernetes
// knows (a dead node's or host's endpoints turn unready there), and a
// restart of CAFE must not deregister a healthy fleet.
//
// A consumer holds a lease (TTL ConsumerTTL) for as long as it runs, and
// under it one key per service it calls, whose value is the highest
// registry revision whose changes to that service it has applied to its
// load balancer. A consumer that dies stops counting when its lease
// expires.
//
// Consumer is that side: it reads the service, then applies all the
// events of each watch response to its table before it acknowledges the
// response's highest revision (a progress notification's header
// revision), so an acknowledgement is never ahead of the table. It reads
// the service again when its watch is canceled or compacted, takes a new
// lease (and writes its acknowledgement again) when it loses one, and
// retries failed writes with a bounded backoff: while it has not
// acknowledged, providers wait. Close revokes its lease and empties its
// table, so it stops counting and stops picking at once.
//
// # Deregistration is confirmed by the consumers
//
// An instance is out of east-west traffic once no registration of a
// service lists its address and every live consumer of each service of
// its namespace has acknowledged a revision at least that service's
// revision key's: then each has applied the deregistration, and sends it
// no new request. CAFE's registry traffic provider (package
// internal/traffic/registry) holds its finalizer traffic.cafe.io/registry
// on the instance until then, so the lossless protocol stops an instance
// only after every caller has stopped picking it.
package registry
