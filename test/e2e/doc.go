// Package e2e holds end-to-end tests on the embedded local control plane:
// real etcd, kube-apiserver, kube-controller-manager and kube-scheduler with
// kwok nodes over three zones, started through the same code as `cafe dev up`.
package e2e
