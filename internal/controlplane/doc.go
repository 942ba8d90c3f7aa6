// Package controlplane runs CAFE's embedded local Kubernetes control plane:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from
// their Go modules, plus kwok simulating the kubelets of a set of nodes spread
// over zones and cells.
//
// It is the one implementation behind `cafe dev up`, the envtest assets used
// by integration tests and the e2e harness, so every test talks to the same
// real API server code path a user gets from `make run`.
//
// Invariants:
//   - Every process listens on loopback only, on ports picked free at start.
//   - Readiness is waited on (health endpoints, Ready nodes), never slept on.
//   - A child that exits on its own is reported with the tail of its log and
//     stops the whole control plane; Stop leaves no child process behind
//     (children also get SIGKILL from the kernel if this process dies).
//   - Binaries are built once into a bin directory and rebuilt only when the
//     pinned tools module (hack/tools/*) changes.
package controlplane
