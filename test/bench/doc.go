// Command bench measures a 1,000-pod release on the local control plane:
// a CafeDeployment in InPlaceSet mode against a native apps/v1 Deployment
// with the same maxUnavailable, in one run on one control plane, and writes
// docs/benchmarks.md. `make bench` runs it after `make build tools`.
//
// # Method
//
// One control plane (internal/controlplane, as `cafe dev up` starts it) on a
// fresh state directory, so etcd starts empty, with 100 kwok nodes over
// zone-a, zone-b and zone-c and no simulated pod start or delete delay: the
// control plane is the only limit. CAFE's CRDs and RBAC are installed with
// install.CAFE, and CAFE's controllers run as a separate process, `bin/cafe
// manager`, under the cafe-controller-manager ServiceAccount with its admission
// webhooks (as an install runs them), so that its CPU time (utime+stime, /proc/<pid>/stat) and peak RSS
// (VmHWM, /proc/<pid>/status, reset through clear_refs before a release) can
// be read apart from the control plane's processes (cp.PIDs()).
//
// Each scenario runs in its own namespace with a Service selecting the pods
// (without a selector where the workload writes the endpoints itself).
// The workload is created at image v1 and the benchmark waits until every
// pod is Ready, the EndpointSlices list them all ready and the workload's
// controller is done. It then snapshots the counters, changes the image to
// v2, and waits until the release is complete — defined once for every
// workload: exactly N pods of the app, none terminating, all Ready, each
// one's container status (what the simulated kubelet reports) on v2. That
// instant ends the wall time. It then waits for the workload's status to say
// so as well and for the EndpointSlices, and snapshots again. Every wait
// watches (list + watch, condition re-evaluated on each event); nothing
// sleeps. The namespace is deleted, and its deletion waited for, before the
// next scenario.
//
// The app-rollback scenario measures `cafe app rollback --fast`: a
// CafeAppService is set up by publishing r1 (image v2) and then r2 (image
// v1), both to completion; the "release" is the rollback to r1, and the
// wall time runs from that write until every pod is back on v2 (see
// appRollback).
//
// The cloneset scenario (kruise.go) releases the same pods with OpenKruise's
// CloneSet (InPlaceIfPossible): kruise-manager, built from the Go module
// hack/tools/kruise pins (controlplane.KruiseManager, into bin/ the first
// time), runs as a child process only around that scenario, with Kruise's
// CRDs and the CloneSet's webhooks installed from its own manifests.
//
// Every release is recorded on the watch stream (test/framework/watchrec)
// from before the image change until the pods settle: the report counts the
// lossless protocol's violations and water-level dips (invariants.go) and
// shows the writes to one released pod with their field managers
// (sequence.go). After the releases the API server's write floor is
// measured (floor.go): unscheduled pods' status patched as fast as it
// answers. `-scale` runs 10,000 pods on 1,000 nodes, the InPlaceSet release
// alone, onto docs/benchmarks-scale.md.
//
// The node-failure scenario (issue 6, nodefailure.go) releases nothing: on
// kwok nodes of its own in three zones it runs a CafeDeployment, stops one
// node's heartbeats and measures how long until all the replicas are Ready
// on other nodes, with CAFE's node lifecycle controller (policy Enforce)
// and with the upstream controller alone (policy Observe), checking the
// water level and the lossless protocol on the watch stream. Its section of
// the page is written by nodefailure_report.go; the upstream baseline takes
// about six minutes, fixed by kube-controller-manager's defaults.
//
// The traffic scenario (issue 13, traffic.go) runs last, on a control plane
// of its own started with the pod network, the gateway (Traefik, Gateway
// API) and the pod emulator, and cafe manager with the gateway traffic
// provider on (--gateway-api-url); it needs root. For each kind (InPlaceSet
// mode, native Deployment, ReplicaSet mode) an app of -traffic-replicas
// pods behind an HTTPRoute is released from v1 to v2 while internal/loadgen
// sends -traffic-rate requests/s through the gateway (lowered, after a
// short calibration, if Traefik would use more than half a core). It
// reports failed requests, p99 latency before and during the release, the
// wall time and the gateway's CPU (traffic_report.go). The other scenarios
// run on a control plane without traffic, as before.
//
// The classic scenario (issue 15, classic.go) runs after it, on a control
// plane of its own with the same traffic components, 6 simulated nodes and
// 6 classic hosts (2 per zone), each in a network namespace of its own
// running `cafe agent` as a child of the control plane, the demo app's
// packages on an artifact store; it needs root. 10 CafeDeployments of 6
// classic instances (every zone a classic unit, 2 instances each, app i on
// port 8080+i) behind one HTTPRoute, 60 instances, 10 per host, are
// released v1 → v2 at once while -classic-rate requests/s go through the
// gateway; then the same 10 apps as InPlaceSet pods (60 pods, the pod
// emulator's answers) on the same control plane. It reports failed
// requests, p99 latency, the wall time, CAFE's and the control plane's CPU,
// and per host the agent's CPU and peak RSS and its instance processes' CPU
// and memory, read from /proc (classic_proc.go, classic_report.go).
//
// When only some parts of the page ran (the releases, node failure,
// traffic, classic) and -out exists, only their sections are replaced
// (mergeParts).
//
// A snapshot holds the apiserver's apiserver_request_total (successful
// writes: verbs POST, PUT, PATCH, DELETE, APPLY with a 2xx code, by
// resource; failed ones apart), each component's own client counters
// (rest_client_requests_total of cafe manager, kube-controller-manager,
// kube-scheduler and kwok where exported) and every process's CPU time.
// Writes per pod are the successful writes between the snapshots, over all
// resources and clients, divided by the number of pods ("all-in"). CAFE's
// CPU share is its CPU time over that of etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok.
//
// Speed goals are measured and reported with PASS/MISS, never asserted:
// the benchmark fails only when it cannot measure. A release that does not
// finish within -timeout is reported with the workload's status instead of
// numbers.
//
// cafe manager runs once for the whole benchmark, started as the issue
// says (`bin/cafe manager --kubeconfig ... --health-probe-bind-address ...`),
// except that its metrics listener is on (loopback) so that its own request
// and reconcile counts can be read; -manager-args appends flags, e.g. to try
// another --kube-api-qps.
package main
