package dev_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/cli/dev"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/podemu"
	"github.com/cafe-io/cafe/internal/podnet/podnettest"
	"github.com/cafe-io/cafe/test/builders"
	"github.com/cafe-io/cafe/test/framework"
)

// `cafe dev emulate-pods` runs here against a real kube-apiserver (envtest)
// and a real pod network of the test's own, as `cafe dev up` would set
// them up: a kubeconfig file, a state directory naming the network.
var (
	k8sClient  client.WithWatch
	kubeconfig string
	stateDir   string
)

// podCIDR is outside the local control plane's default range and the
// podemu package tests' one.
const podCIDR = "198.19.65.0/24"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		_, dir, cleanup, err := podnettest.Create("the emulate-pods tests", netip.MustParsePrefix(podCIDR))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cleanup()
		stateDir, kubeconfig = dir, filepath.Join(dir, "kubeconfig")
	}
	return framework.EnvtestMain(m, func(cfg *rest.Config) (err error) {
		if k8sClient, err = framework.NewClient(cfg); err != nil {
			return err
		}
		return writeKubeconfig(cfg, kubeconfig)
	})
}

// writeKubeconfig writes cfg (envtest's admin, with a client certificate)
// as a kubeconfig file.
func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// emulatePods runs `cafe dev emulate-pods args` until ctx is done.
func emulatePods(ctx context.Context, args ...string) error {
	streams, _, _, errOut := genericiooptions.NewTestIOStreams()
	cmd := dev.NewCmd(streams)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(append([]string{"emulate-pods"}, args...))
	err := cmd.ExecuteContext(ctx)
	if testing.Verbose() {
		fmt.Fprint(os.Stderr, errOut.String())
	}
	return err
}

// Flags that would listen off loopback, or outside a usable pod CIDR, are
// refused before anything is opened.
func TestEmulatePodsRefusesFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"a kubeconfig is needed", []string{"--pod-cidr", podCIDR}, `"kubeconfig" not set`},
		{"a pod CIDR is needed", []string{"--kubeconfig", "k"}, `"pod-cidr" not set`},
		{"the pod CIDR must parse", []string{"--kubeconfig", "k", "--pod-cidr", "198.19.65.0"}, "--pod-cidr"},
		{"a loopback pod CIDR is refused", []string{"--kubeconfig", "k", "--pod-cidr", "127.1.0.0/16"}, "outside 127.0.0.0/8"},
		{"a health address on every interface is refused", []string{"--kubeconfig", "k", "--pod-cidr", podCIDR, "--health-addr", ":9440"}, "loopback"},
		{"a health address off loopback is refused", []string{"--kubeconfig", "k", "--pod-cidr", podCIDR, "--health-addr", "0.0.0.0:9440"}, "loopback"},
		{"a health address by name is refused", []string{"--kubeconfig", "k", "--pod-cidr", podCIDR, "--health-addr", "localhost:9440"}, "loopback"},
		{"a missing pod network is reported", []string{"--kubeconfig", "k", "--pod-cidr", podCIDR, "--state-dir", t.TempDir(), "--health-addr", "127.0.0.1:0"}, "is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := emulatePods(context.Background(), tc.args...)
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
		})
	}
}

// The subcommand serves the running pods of every namespace and its own
// /healthz and /status on loopback, and stops every container when it is
// told to stop.
func TestEmulatePodsServesRunningPods(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ports, err := controlplane.FreePorts(1)
	g.Expect(err).NotTo(HaveOccurred())
	health := "127.0.0.1:" + strconv.Itoa(ports[0])

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- emulatePods(runCtx, "--kubeconfig", kubeconfig, "--state-dir", stateDir, "--pod-cidr", podCIDR, "--health-addr", health)
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
	httpClient := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	getOK := func(url string) (http.Header, []byte, error) {
		resp, err := httpClient.Get(url)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		return resp.Header, body, err
	}
	g.Eventually(func() error { _, _, err := getOK("http://" + health + "/healthz"); return err }).
		WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())

	ns := framework.CreateNamespace(t, k8sClient)
	pod := builders.Pod(ns, "web", "example.com/demo:v7", 8080)
	g.Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	builders.SetPodRunning(pod, "198.19.65.20")
	g.Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())

	addr := "198.19.65.20:8080"
	g.Eventually(func(g Gomega) {
		h, _, err := getOK("http://" + addr + "/")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(h.Get(podemu.VersionHeader)).To(Equal("v7"))
		g.Expect(h.Get(podemu.PodHeader)).To(Equal("web"))
	}).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())

	_, body, err := getOK("http://" + health + "/status")
	g.Expect(err).NotTo(HaveOccurred())
	var status struct {
		Ready     bool
		Endpoints []podemu.EndpointStatus
	}
	g.Expect(json.Unmarshal(body, &status)).To(Succeed())
	g.Expect(status.Ready).To(BeTrue())
	g.Expect(status.Endpoints).To(ConsistOf(And(
		HaveField("Endpoint.Address", netip.MustParseAddrPort(addr)),
		HaveField("Endpoint.Namespace", ns),
		HaveField("State", podemu.Listening))))

	stop()
	g.Eventually(done).WithTimeout(time.Minute).Should(Receive(BeNil()))
	_, err = net.DialTimeout("tcp", addr, 5*time.Second)
	g.Expect(err).To(MatchError(syscall.ECONNREFUSED))
	_, err = net.DialTimeout("tcp", health, 5*time.Second)
	g.Expect(err).To(MatchError(syscall.ECONNREFUSED))
	done <- nil // for the cleanup
}
