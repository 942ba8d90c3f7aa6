// Package inplaceset is the InPlaceSet controller: CAFE's own pod set, one
// per topology unit. It creates and owns pods directly (deterministic names
// <set>-<slot>), keeps replicas − partition of them on the update revision,
// and moves pods there only through the lossless protocol of package
// lossless: drain (gate False), wait for EndpointSlices and traffic
// providers, then patch the pod in place when only images, labels and
// annotations change (the pod keeps name, UID, node and IP; completion is
// judged from the kubelet's container status) or delete it to be recreated.
// The gate reopens once the pod has been ready for minReadySeconds.
//
// With spec.endpoints the set writes the EndpointSlices of a Service
// without a selector for its pods (endpoints.go): an in-place update then
// drains a pod by listing it not ready in them instead of closing its gate,
// and lists it ready again once it has been ready for minReadySeconds; the
// slices are that drain's state. Other operations still use the gate.
//
// Decisions are made by the pure function plan (plan.go) from what gather
// read; the reconciler only executes them. Templates of past revisions are
// kept as ControllerRevisions.
package inplaceset
