// Package framework holds the helpers CAFE's integration and e2e tests share:
// starting a real API server (envtest on the project's own etcd and
// kube-apiserver) or the full local control plane through the same code as
// `cafe dev up`, registering nodes in zones, per-test namespaces, and waiting
// on state through watches instead of sleeping. The watch recorder and the
// lossless invariant checkers are in the watchrec subpackage.
package framework
