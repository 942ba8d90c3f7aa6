package controlplane

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
)

// Ports are the loopback ports of one control plane.
type Ports struct {
	EtcdClient        int `json:"etcdClient"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiServer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
	Kwok              int `json:"kwok"`
	// Gateway, GatewayAdmin and PodEmulator are used with Config.Traffic:
	// Traefik's web and API entry points and the emulator's health server.
	Gateway      int `json:"gateway,omitempty"`
	GatewayAdmin int `json:"gatewayAdmin,omitempty"`
	PodEmulator  int `json:"podEmulator,omitempty"`
	// Registry and RegistryPeer are the service registry's client and
	// peer ports (Config.Traffic).
	Registry     int `json:"registry,omitempty"`
	RegistryPeer int `json:"registryPeer,omitempty"`
	// Prometheus is the Prometheus server's HTTP port (Config.Traffic).
	Prometheus int `json:"prometheus,omitempty"`
	// Directory is the directory's LDAPS port (Config.Directory).
	Directory int `json:"directory,omitempty"`
}

func pickPorts() (Ports, error) {
	p, err := FreePorts(13)
	if err != nil {
		return Ports{}, err
	}
	return Ports{EtcdClient: p[0], EtcdPeer: p[1], APIServer: p[2], ControllerManager: p[3], Scheduler: p[4], Kwok: p[5],
		Gateway: p[6], GatewayAdmin: p[7], PodEmulator: p[8], Registry: p[9], RegistryPeer: p[10], Prometheus: p[11], Directory: p[12]}, nil
}

// layout names every file of one control plane under its state directory.
type layout struct {
	dir string
}

func (l layout) pki() string          { return filepath.Join(l.dir, "pki") }
func (l layout) etcdData() string     { return filepath.Join(l.dir, "etcd") }
func (l layout) registryData() string { return filepath.Join(l.dir, "registry") }
func (l layout) prometheus() string   { return filepath.Join(l.dir, "prometheus") }
func (l layout) directory() string    { return filepath.Join(l.dir, "directory") }
func (l layout) authenticationConfig() string {
	return filepath.Join(l.dir, "authentication.yaml")
}
func (l layout) logs() string                { return filepath.Join(l.dir, "logs") }
func (l layout) log(component string) string { return filepath.Join(l.dir, "logs", component+".log") }
func (l layout) kubeconfig(id Identity) string {
	return filepath.Join(l.dir, "kubeconfigs", id.Name+".kubeconfig")
}
func (l layout) adminKubeconfig() string { return filepath.Join(l.dir, "kubeconfig") }
func (l layout) kwokConfig() string      { return filepath.Join(l.dir, "kwok", "kwok.yaml") }
func (l layout) schedulerConfig() string { return filepath.Join(l.dir, "kube-scheduler.yaml") }
func (l layout) stateFile() string       { return filepath.Join(l.dir, "state.json") }

func url(port int) string       { return "http://127.0.0.1:" + strconv.Itoa(port) }
func secureURL(port int) string { return "https://127.0.0.1:" + strconv.Itoa(port) }

// etcdArgs runs a single-member etcd without fsync: the control plane is
// disposable and fsync dominates write latency on a small machine. Clients
// and the peer port speak TLS and must present a certificate of the
// control plane's CA: a local user cannot reach the cluster's data.
func etcdArgs(l layout, p Ports, pki PKI) []string {
	return []string{
		"--name=default",
		"--data-dir=" + l.etcdData(),
		"--listen-client-urls=" + secureURL(p.EtcdClient),
		"--advertise-client-urls=" + secureURL(p.EtcdClient),
		"--listen-peer-urls=" + secureURL(p.EtcdPeer),
		"--initial-advertise-peer-urls=" + secureURL(p.EtcdPeer),
		"--initial-cluster=default=" + secureURL(p.EtcdPeer),
		"--cert-file=" + pki.EtcdCert(),
		"--key-file=" + pki.EtcdKey(),
		"--client-cert-auth=true",
		"--trusted-ca-file=" + pki.CACert(),
		"--peer-cert-file=" + pki.EtcdCert(),
		"--peer-key-file=" + pki.EtcdKey(),
		"--peer-client-cert-auth=true",
		"--peer-trusted-ca-file=" + pki.CACert(),
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=8589934592",
		"--log-level=warn",
	}
}

func apiServerArgs(l layout, p Ports, pki PKI) []string {
	return []string{
		"--etcd-servers=" + secureURL(p.EtcdClient),
		"--etcd-cafile=" + pki.CACert(),
		"--etcd-certfile=" + pki.EtcdClientCert(),
		"--etcd-keyfile=" + pki.EtcdClientKey(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The lease reconciler refuses a loopback address; nothing in the
		// cluster dials the kubernetes Service, so it gets no endpoints.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(p.APIServer),
		"--tls-cert-file=" + pki.ServingCert(),
		"--tls-private-key-file=" + pki.ServingKey(),
		"--client-ca-file=" + pki.CACert(),
		"--service-account-key-file=" + pki.ServiceAccountPub(),
		"--service-account-signing-key-file=" + pki.ServiceAccountKey(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
}

// profiled turns a component's --profiling=false on when Config.Profiling
// asks for it.
func (cp *ControlPlane) profiled(args []string) []string {
	if !cp.cfg.Profiling {
		return args
	}
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--profiling=false" {
			out[i] = "--profiling=true"
		}
	}
	return out
}

// controllerManagerArgs runs every default controller (node lifecycle,
// endpointslice, garbage collector, replicaset, statefulset, deployment, …)
// with per-controller service-account credentials, as a real cluster does.
// The client QPS is raised: at the default 20 a 1,000-pod rollout on this
// machine takes twice as long (shared/notes/local-control-plane.md).
func controllerManagerArgs(l layout, p Ports, pki PKI, qps int, podCIDR netip.Prefix) []string {
	kc := l.kubeconfig(ControllerManagerIdentity)
	return []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.ControllerManager),
		"--cert-dir=" + filepath.Join(l.dir, "kube-controller-manager"),
		"--root-ca-file=" + pki.CACert(),
		"--service-account-private-key-file=" + pki.ServiceAccountKey(),
		"--cluster-signing-cert-file=" + pki.CACert(),
		"--cluster-signing-key-file=" + pki.CAKey(),
		"--use-service-account-credentials=true",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--cluster-cidr=" + podCIDR.String(),
		"--leader-elect=false",
		"--controllers=*",
		"--kube-api-qps=" + strconv.Itoa(qps),
		"--kube-api-burst=" + strconv.Itoa(2*qps),
		"--profiling=false",
		"--v=1",
	}
}

func schedulerArgs(l layout, p Ports) []string {
	kc := l.kubeconfig(SchedulerIdentity)
	return []string{
		"--config=" + l.schedulerConfig(),
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.Scheduler),
		"--cert-dir=" + filepath.Join(l.dir, "kube-scheduler"),
		"--v=1",
	}
}

// schedulerConfig sets the scheduler's client QPS through its component
// config; the equivalent flags are deprecated.
func schedulerConfig(kubeconfig string, qps int) string {
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: %d
  burst: %d
leaderElection:
  leaderElect: false
`, kubeconfig, qps, 2*qps)
}

// kwokAnnotation marks the nodes kwok simulates; kwok manages only those, so
// a test may still register nodes that nobody heartbeats.
const (
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
	KwokNodeValue      = "fake"
)

// kwokArgs: the nodes publish kwok's server as their kubelet endpoint
// (InternalIP 127.0.0.1, daemonEndpoints.kubeletEndpoint.Port the kwok
// port), so CAFE's node lifecycle controller can probe it as it probes a
// real kubelet. One server answers for every node.
func kwokArgs(l layout, p Ports, podCIDR netip.Prefix) []string {
	return []string{
		"--kubeconfig=" + l.kubeconfig(KwokIdentity),
		"--config=" + l.kwokConfig(),
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=" + KwokNodeValue,
		"--server-address=127.0.0.1:" + strconv.Itoa(p.Kwok),
		"--node-port=" + strconv.Itoa(p.Kwok),
		"--cidr=" + podCIDR.String(),
		"--node-ip=127.0.0.1",
	}
}
