package controlplane

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

