package controlplane

import (
	"context"
	"fmt"
)

// RegistryComponent is the service registry's component name: a second,
// separate etcd that holds CAFE's east-west registrations (package
// internal/registry, docs/classic-hosts.md). It is not the cluster's etcd:
// consumers and the registrar write to it, and nothing of the cluster's
// data is there.
const RegistryComponent = "registry"

// RegistryArgs runs the registry's single-member etcd on loopback, data in
// dataDir, without fsync (the local registry is disposable like the rest
// of the control plane). Its clients speak plain HTTP on loopback: the
// local control plane's consumers are demo processes without client
// certificates (docs/security.md says what a production registry needs).
func RegistryArgs(dataDir string, clientPort, peerPort int) []string {
	client, peer := url(clientPort), url(peerPort)
	return []string{
		"--name=registry",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=registry=" + peer,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
}

// RegistryURL is the registry's client URL for a client port.
func RegistryURL(clientPort int) string { return url(clientPort) }

// RegistryURL is the service registry's client URL; empty without Traffic.
func (cp *ControlPlane) RegistryURL() string {
	if cp.network == nil {
		return ""
	}
	return url(cp.ports.Registry)
}

// startRegistry starts the service registry's etcd and waits until it
// reports itself healthy.
func (cp *ControlPlane) startRegistry(ctx context.Context) error {
	fmt.Fprintf(cp.cfg.Out, "starting %s (the east-west service registry, an etcd of its own)\n", RegistryComponent)
	p, err := startProcess(RegistryComponent, cp.binary("etcd"), RegistryArgs(cp.layout.registryData(), cp.ports.Registry, cp.ports.RegistryPeer),
		nil, cp.layout.log(RegistryComponent))
	if err != nil {
		return err
	}
	return cp.adopt(ctx, p, func(ctx context.Context) error { return waitHTTP(ctx, url(cp.ports.Registry)+"/health", nil) })
}
