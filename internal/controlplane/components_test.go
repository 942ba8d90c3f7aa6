package controlplane

import (
	"github.com/cafe-io/cafe/internal/podnet"

	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/cafe-io/cafe/config"
	"github.com/cafe-io/cafe/internal/controlplane/kwokstages"
)

func TestComponentsListenOnLoopbackOnly(t *testing.T) {
	g := NewWithT(t)
	l := layout{dir: "/state"}
	p := Ports{EtcdClient: 1, EtcdPeer: 2, APIServer: 3, ControllerManager: 4, Scheduler: 5, Kwok: 6, Gateway: 7, GatewayAdmin: 8, PodEmulator: 9}
	pki := PKI{Dir: "/state/pki"}
	cidr := podnet.UnroutedCIDR
	all := [][]string{etcdArgs(l, p, pki), apiServerArgs(l, p, pki), controllerManagerArgs(l, p, pki, 100, cidr), schedulerArgs(l, p), kwokArgs(l, p, cidr), traefikArgs(l, p)}
	for _, args := range all {
		for _, a := range args {
			if strings.Contains(a, "://") && !strings.Contains(a, "kubernetes.default.svc") {
				g.Expect(a).To(ContainSubstring("://127.0.0.1:"), a)
			}
			if strings.HasPrefix(a, "--bind-address=") || strings.HasPrefix(a, "--server-address=") || strings.HasPrefix(a, "--entrypoints.") {
				g.Expect(a).To(ContainSubstring("127.0.0.1"), a)
			}
		}
	}
	// Traefik would otherwise call home (version check, anonymous usage).
	g.Expect(traefikArgs(l, p)).To(ContainElements("--global.checknewversion=false", "--global.sendanonymoususage=false"))
}

func TestControllerManagerAndSchedulerGetTheRaisedClientQPS(t *testing.T) {
	g := NewWithT(t)
	args := controllerManagerArgs(layout{dir: "/s"}, Ports{}, PKI{}, 100, podnet.UnroutedCIDR)
	g.Expect(args).To(ContainElements("--kube-api-qps=100", "--kube-api-burst=200", "--use-service-account-credentials=true", "--controllers=*"))

	var cfg struct {
		ClientConnection struct {
			QPS   float64 `json:"qps"`
			Burst int     `json:"burst"`
		} `json:"clientConnection"`
	}
	g.Expect(yaml.Unmarshal([]byte(schedulerConfig("/k", 100)), &cfg)).To(Succeed())
	g.Expect(cfg.ClientConnection.QPS).To(Equal(100.0))
	g.Expect(cfg.ClientConnection.Burst).To(Equal(200))
}

func TestKwokStagesShipTheKubeletBehavioursStockKwokLacks(t *testing.T) {
	g := NewWithT(t)
	stream, err := kwokstages.All()
	g.Expect(err).NotTo(HaveOccurred())
	objs, err := config.Decode([]byte(stream))
	g.Expect(err).NotTo(HaveOccurred())

	names := map[string]bool{}
	for _, o := range objs {
		g.Expect(o.GetKind()).To(Equal("Stage"))
		g.Expect(o.GetAPIVersion()).To(Equal("kwok.x-k8s.io/v1alpha1"))
		names[o.GetName()] = true
	}
	g.Expect(names).To(HaveKey("pod-readiness-gates"))
	g.Expect(names).To(HaveKey("pod-image-restart"))
	g.Expect(names).To(HaveKey("pod-start"))
	g.Expect(names).To(HaveKey("pod-delete"))
	g.Expect(names).To(HaveKey("node-initialize"))
	g.Expect(names).To(HaveKey("node-heartbeat-with-lease"))
	g.Expect(names).To(HaveKey("pvc-provision"))
	g.Expect(names).To(HaveKey("pv-bind"))
	g.Expect(names).To(HaveKey("pv-delete"))
	g.Expect(names).NotTo(HaveKey("pvc-delete"), "kwok's pvc-delete releases the volume of a claim a pod still uses; the PV controller releases it (see pv-delete.yaml)")
	g.Expect(stream).NotTo(ContainSubstring("cafe.io/traffic-ready"), "stages must honour every gate, not a hard-coded one")
}

func TestVolumeStagesProvisionForTheControlPlanesStorageClass(t *testing.T) {
	g := NewWithT(t)
	stream, err := kwokstages.All()
	g.Expect(err).NotTo(HaveOccurred())
	objs, err := config.Decode([]byte(stream))
	g.Expect(err).NotTo(HaveOccurred())

	kinds := map[string]string{}
	for _, o := range objs {
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "resourceRef", "kind")
		kinds[o.GetName()] = kind
		if kind != "PersistentVolumeClaim" && kind != "PersistentVolume" {
			continue
		}
		exprs, _, _ := unstructured.NestedSlice(o.Object, "spec", "selector", "matchExpressions")
		selector, err := json.Marshal(exprs)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(selector)).To(ContainSubstring("self.spec.storageClassName == '"+StorageClassName+"'"),
			"stage %s must only touch volumes of the control plane's StorageClass", o.GetName())
	}
	g.Expect(kinds).To(HaveKeyWithValue("pvc-provision", "PersistentVolumeClaim"))
	g.Expect(kinds).To(HaveKeyWithValue("pv-bind", "PersistentVolume"))
	g.Expect(kinds).To(HaveKeyWithValue("pv-delete", "PersistentVolume"))
	g.Expect(stream).To(ContainSubstring("pv.kubernetes.io/provisioned-by: " + StorageProvisioner))

	// kwok plays stages from its --config file for any kind unless Stage is
	// served as a CRD instead.
	g.Expect(kwokConfiguration).NotTo(ContainSubstring("enableCRDs"))
}
