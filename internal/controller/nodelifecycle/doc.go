// Package nodelifecycle is CAFE's node lifecycle controller. It works beside
// kube-controller-manager's node lifecycle controller (never instead of it)
// and judges nodes from several signals: the Ready condition, the age of the
// node's Lease, configured node conditions, external NodeHealthReports and
// an active probe of the kubelet endpoint.
//
// Invariants:
//   - the verdict is a pure function of the gathered signals and the
//     NodeLifecyclePolicy (judgeNode); the reconciler only gathers and
//     writes;
//   - Suspect only cordons (taint cafe.io/unhealthy:NoSchedule);
//   - Failed migrates the node's InPlaceSet pods by annotating them
//     (cafe.io/migration-requested): the InPlaceSet creates the replacement
//     first and drains the pod through the lossless protocol, never below
//     the set's replicas while the pod still serves; pods of other owners
//     get the cafe.io/unhealthy:NoExecute taint only after that;
//   - no migration starts in a zone the zone guard holds, for a node whose
//     Lease is fresh (unless the policy accepts an external report), or
//     beyond the global rate limit;
//   - the verdict and its evidence are on the node (condition
//     cafe.io/NodeHealthy) and in events; the zone guard is a condition of
//     the NodeLifecyclePolicy.
//
// Files: controller.go gathers and conducts the reconcile, signals.go turns
// what was read into signals, verdict.go judges a node, safety.go holds the
// zone guard and the rate limit, actions.go plans the taints and
// migrations, status.go computes the policy's status, write.go holds the
// writers, probe.go the kubelet prober and metrics.go the metrics. The
// files that decide make no API call.
package nodelifecycle
