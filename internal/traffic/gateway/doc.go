// Package gateway is the traffic provider for north-south traffic through
// a Gateway API gateway (provider name "gateway", finalizer
// traffic.cafe.io/gateway).
//
// Serves: the gateway may route to a pod when some HTTPRoute
// (gateway.networking.k8s.io/v1) has a backend of kind Service (core
// group; the namespace defaults to the route's) whose selector matches the
// pod's labels in the pod's namespace, and the route has a parent Gateway
// whose GatewayClass names the controller the provider is configured for
// (Options.ControllerName, e.g. traefik.io/gateway-controller). A rule's
// backendRefs, a requestMirror's and an externalAuth's backend all count:
// the gateway sends requests to each. The answer errs towards true: a
// route the gateway has not accepted, or a cross-namespace backend without
// a ReferenceGrant, still counts (an extra finalizer costs one question to
// the gateway, a missing one can lose requests). Everything is read from
// the manager's cache; changes of HTTPRoutes, Services, Gateways and
// GatewayClasses wake the pods they concern (Provider.Watches).
//
// Routes: the pod is routed while the gateway itself, asked through an
// Observer, lists any of the pod's IPs (any port) among the backend
// addresses it sends requests to. The provider shares reads of the
// gateway between the pods asking at once, and never answers a question
// with a read that began before the question was asked.
//
// # Classic instances
//
// The provider is a traffic.InstanceProvider too: the gateway reaches
// ClassicInstances through the EndpointSlices CAFE writes for the
// Services that select them (package classicendpoints).
//
// ServesInstance is Serves with the instance's namespace and labels (the
// same code): some route of a Gateway of ours sends to a Service whose
// selector matches them. The same watches wake the instances a Service
// selects (Provider.InstanceWatches).
//
// RoutesInstance matches an address and a port, not an IP: the
// instances of every app on a host share the host's IP, so the gateway
// still sending to the host on another port says nothing about this
// instance. The instance's addresses are status.address (reported by the
// host's agent) and its host's spec.address with spec.artifact.port (what
// CAFE's EndpointSlices list); it is routed while the gateway lists either.
// An instance with neither (never reported, on an unknown host) cannot be
// sent to and is not routed.
//
// # Plugging in another Gateway API implementation
//
// Serves is implementation-neutral (it reads the Gateway API objects);
// only the Observer knows the implementation. Traefik (NewTraefik) reads
// Traefik's API, GET /api/http/services: every loadBalancer server URL and
// every serverStatus key. For another implementation write an Observer
// whose Backends returns every address the data plane may currently send
// a request to, read from the data plane (never from the Kubernetes
// objects it was configured from, which say what it should do, not what
// it does), and pass it as Options.Observer with that implementation's
// controller name. For example, Envoy Gateway (controller name
// gateway.envoyproxy.io/gatewayclass-controller) runs one Envoy per
// Gateway: its Observer would GET each Envoy's admin endpoint
// /clusters?format=json and return the socket addresses of every
// cluster's host_statuses, the union over all Envoys, failing if any Envoy
// does not answer. Rules every Observer keeps:
//   - an error, never a partial answer, when any part of the data plane
//     cannot be read (a missing address releases a pod too early);
//   - list a server the data plane may send to even if it is currently
//     marked down by health checks (it comes back without a config change);
//   - send packets only to loopback (the project's network rule; NewTraefik
//     refuses any other API address).
//
// A backend Traefik reaches through the Service's cluster IP (its
// nativeLB option) never lists pod IPs: the pod is released at once, and
// only the EndpointSlice check of the drain protects it.
package gateway
