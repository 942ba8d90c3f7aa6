package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/internal/cli/dev"
	"github.com/cafe-io/cafe/internal/controller/scrapetargets"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

// These tests run the cafe binary itself, as `make run` does, each on its own
// state directory and ports, next to the shared control plane.

// `cafe dev up` prints its ready line with the gateway's URL; kubectl then
// sees the nodes over the zones; the samples apply, and curl through the
// gateway reaches the pay app's pods (emulated containers) and gets their
// version; the default classic hosts are Ready; Ctrl-C stops every child
// and releases the pod network.
func TestDevUpReadyLineKubectlAndCtrlCLeavesNoProcess(t *testing.T) {
	g := NewWithT(t)
	up := startDevUp(t, "--nodes", "3", "--traffic")
	g.Expect(up.gateway).To(HavePrefix("http://127.0.0."), "the ready line names the gateway on loopback")

	out := kubectl(t, up.kubeconfig, "get", "nodes", "-L", "topology.kubernetes.io/zone", "--no-headers")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.Expect(lines).To(HaveLen(3), out)
	for i, zone := range []string{"zone-a", "zone-b", "zone-c"} {
		g.Expect(lines[i]).To(MatchRegexp(`^node-%s-0\s+Ready\s.*\s%s$`, zone, zone))
	}

	g.Expect(kubectl(t, up.kubeconfig, "get", "crd", "inplacesets.cafe.io", "-o", "name")).To(ContainSubstring("inplacesets.cafe.io"))

	kubectl(t, up.kubeconfig, "apply", "-k", filepath.Join(framework.RepoRoot(), "config", "samples"))
	g.Expect(curlGateway(t, up.gateway, "pay.example")).To(MatchRegexp(`"version":"v1"`), "curl through the gateway to the pay sample")
	expectPrometheus(t, g, up)

	// The default classic hosts: three agents, one per zone, each enrolled
	// with its own credential and Ready, each with an address of its own
	// (a network namespace of its own beside the pod network).
	hosts := strings.Split(strings.TrimSpace(kubectl(t, up.kubeconfig, "get", "classichosts", "--no-headers")), "\n")
	g.Expect(hosts).To(HaveLen(3))
	for i, zone := range []string{"zone-a", "zone-b", "zone-c"} {
		g.Expect(hosts[i]).To(MatchRegexp(`^vm-%s-1\s+%s\s+198\.19\.2[2-5][0-9]\.%d\s+True\s`, zone, zone, i+1))
	}

	// make run serves the demo app's packages on an artifact store: an
	// instance placed on a classic host runs one, on the host's address.
	instanceAnswers(t, g, up)

	children := up.children(t)
	g.Expect(children).To(HaveLen(13), "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, the registry's etcd, traefik, the pod emulator, prometheus, the directory (slapd), three classic hosts' agents")
	g.Expect(up.cmd.Process.Signal(os.Interrupt)).To(Succeed())
	g.Expect(up.wait(t)).To(Succeed(), up.stderr.String())
	g.Expect(processesUsing(up.stateDir)).To(BeEmpty(), "Ctrl-C left processes behind (classic instances included)")
}

// instanceAnswers runs the demo app's v1 package, from the store cafe dev
// up printed, as a ClassicInstance on vm-zone-a-1, and asks it for its
// version.
func instanceAnswers(t *testing.T, g *WithT, up *devUp) {
	t.Helper()
	ctx := testContext(t)
	m := regexp.MustCompile(`artifact store (http://127\.0\.0\.1:\d+/) serves.* demo-app-v1\.tar\.gz \(sha256 ([0-9a-f]{64})\)`).FindStringSubmatch(up.stderr.String())
	g.Expect(m).To(HaveLen(3), "cafe dev up names the artifact store and the demo packages:\n%s", up.stderr.String())
	cfg, err := clientcmd.BuildConfigFromFlags("", up.kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	host := &cafev1alpha1.ClassicHost{}
	g.Expect(c.Get(ctx, client.ObjectKey{Name: "vm-zone-a-1"}, host)).To(Succeed())
	const port = 18080 // the host's namespace is the test's own: nothing else listens there

	inst := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo-1"},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: "vm-zone-a-1", Artifact: cafev1alpha1.ClassicArtifact{
			URL: m[1] + "demo-app-v1.tar.gz", SHA256: m[2], Command: []string{"bin/demo-app"}, Port: port,
		}},
	}
	g.Expect(c.Create(ctx, inst)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(inst), inst)).To(Succeed())
		g.Expect(inst.Status.Phase).To(Equal(cafev1alpha1.ClassicInstanceRunning))
	}).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).Should(Succeed())
	g.Expect(inst.Status.Address).To(Equal(fmt.Sprintf("%s:%d", host.Spec.Address, port)))
	resp, err := http.Get("http://" + inst.Status.Address + "/")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(resp.Header.Get(appanswer.VersionHeader)).To(Equal("v1"))
	g.Expect(resp.Header.Get(appanswer.PodHeader)).To(Equal("demo-1"))
	expectScrapeTarget(g, up, "demo-1", inst.Status.Address)
	expectRegistry(g, up)
}

// expectPrometheus: the Prometheus of the ready line is ready; it scrapes
// the gateway (Traefik's metrics) and CAFE (metrics over TLS, answered
// only for an authorized ServiceAccount's token), every target up; and it
// holds Traefik's count of the requests that entered the gateway's web
// entry point (curlGateway sent some) and CAFE's own series.
func expectPrometheus(t *testing.T, g *WithT, up *devUp) {
	t.Helper()
	ctx := testContext(t)
	g.Expect(up.prometheus).To(HavePrefix("http://127.0.0.1:"), "the ready line names Prometheus on loopback")
	get := func(g Gomega, path string, into any) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.prometheus+path, nil)
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %s", path, body)
		if into != nil {
			g.Expect(json.Unmarshal(body, into)).To(Succeed(), "%s: %s", path, body)
		}
	}
	poll := func(f func(g Gomega)) {
		t.Helper()
		g.Eventually(f).WithContext(ctx).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
	}
	poll(func(g Gomega) { get(g, "/-/ready", nil) })

	poll(func(g Gomega) {
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					ScrapeURL string            `json:"scrapeUrl"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		get(g, "/api/v1/targets?state=active", &targets)
		health := map[string][]string{}
		for _, tg := range targets.Data.ActiveTargets {
			health[tg.Labels["job"]] = append(health[tg.Labels["job"]], tg.Health)
			g.Expect(tg.ScrapeURL).To(MatchRegexp(`^https?://127\.0\.0\.1:\d+/metrics$`), "Prometheus scrapes loopback only")
		}
		g.Expect(health).To(HaveKeyWithValue("gateway", []string{"up"}), "%+v", targets.Data.ActiveTargets)
		g.Expect(health).To(HaveKeyWithValue("cafe", []string{"up"}), "%+v", targets.Data.ActiveTargets)
	})

	for _, query := range []string{
		`traefik_entrypoint_requests_total{job="gateway",entrypoint="web"}`,
		`cafe_nodelifecycle_migrations_total{job="cafe"}`,
	} {
		poll(func(g Gomega) {
			var answer struct {
				Data struct {
					Result []json.RawMessage `json:"result"`
				} `json:"data"`
			}
			get(g, "/api/v1/query?query="+neturl.QueryEscape(query), &answer)
			g.Expect(answer.Data.Result).NotTo(BeEmpty(), "no series for %s", query)
		})
	}
}

// expectRegistry: cafe dev up names the service registry it runs, and
// that etcd answers healthy.
func expectRegistry(g *WithT, up *devUp) {
	m := regexp.MustCompile(`in the service registry at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(up.stderr.String())
	g.Expect(m).To(HaveLen(2), "cafe dev up names the service registry:\n%s", up.stderr.String())
	resp, err := http.Get(m[1] + "/health")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s", body)
	g.Expect(string(body)).To(ContainSubstring(`"health":"true"`))
}

// expectScrapeTarget: the file_sd file cafe dev up named lists the classic
// instance name at address, and the pods of the samples beside it.
func expectScrapeTarget(g *WithT, up *devUp, name, address string) {
	m := regexp.MustCompile(`file_sd targets of every pod and classic instance: (\S+)\)`).FindStringSubmatch(up.stderr.String())
	g.Expect(m).To(HaveLen(2), "cafe dev up names the scrape targets file:\n%s", up.stderr.String())
	g.Eventually(func(g Gomega) {
		data, err := os.ReadFile(m[1])
		g.Expect(err).NotTo(HaveOccurred())
		var groups []scrapetargets.Group
		g.Expect(json.Unmarshal(data, &groups)).To(Succeed())
		kinds := map[string]int{}
		var instance *scrapetargets.Group
		for i := range groups {
			kinds[groups[i].Labels["cafe_kind"]]++
			if groups[i].Labels["cafe_name"] == name {
				instance = &groups[i]
			}
		}
		g.Expect(instance).NotTo(BeNil(), "the classic instance is a target:\n%s", data)
		g.Expect(instance.Targets).To(Equal([]string{address}))
		g.Expect(instance.Labels).To(HaveKeyWithValue("zone", "zone-a"))
		g.Expect(kinds[scrapetargets.KindPod]).To(BeNumerically(">", 0), "the samples' pods are targets too")
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// curlGateway GETs / for host through the gateway until a pod answers 200
// (the route and its servers reach Traefik a moment after the pods are
// Ready: its configuration is the state waited on, read through requests
// as curl would), and returns the body.
func curlGateway(t *testing.T, gatewayURL, host string) string {
	t.Helper()
	ctx := testContext(t)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no answer through the gateway %s for %s: last %s", gatewayURL, host, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// On a bare control plane (--without-cafe) `kubectl apply -k config/default`
// installs CAFE as on any cluster. Then a child that dies is named with the
// tail of its log; cafe dev up stops the others and exits non-zero instead
// of hanging.
func TestDevUpInstallsWithKustomizeAndReportsAChildThatDies(t *testing.T) {
	g := NewWithT(t)
	up := startDevUp(t, "--nodes", "1", "--zones", "zone-a", "--without-cafe", "--traffic=false")

	applied := kubectl(t, up.kubeconfig, "apply", "-k", filepath.Join(framework.RepoRoot(), "config", "default"))
	g.Expect(applied).To(ContainSubstring("customresourcedefinition.apiextensions.k8s.io/cafedeployments.cafe.io created"))
	g.Expect(applied).To(ContainSubstring("clusterrole.rbac.authorization.k8s.io/cafe-manager-role created"))
	g.Expect(applied).To(ContainSubstring("validatingwebhookconfiguration.admissionregistration.k8s.io/cafe-validating-webhook created"))
	g.Expect(kubectl(t, up.kubeconfig, "wait", "--for=condition=Established", "crd/inplacesets.cafe.io", "crd/cafedeployments.cafe.io")).To(ContainSubstring("condition met"))

	etcd := up.children(t)[0]
	g.Expect(up.children(t)).To(HaveLen(5))
	g.Expect(syscall.Kill(etcd, syscall.SIGKILL)).To(Succeed())

	err := up.wait(t)
	g.Expect(err).To(HaveOccurred(), "cafe dev up must exit non-zero when etcd dies")
	g.Expect(up.stderr.String()).To(ContainSubstring("etcd exited unexpectedly"))
	g.Expect(up.stderr.String()).To(ContainSubstring("--- last lines of " + filepath.Join(up.stateDir, "logs", "etcd.log")))
	g.Expect(processesUsing(up.stateDir)).To(BeEmpty())
}

// A cafe dev up killed outright takes its children with it (the kernel
// signals them), and the next run on the same state directory with
// --keep-state detects the crashed run and reuses its data.
func TestDevUpRecoversFromACrashedRunWithKeepState(t *testing.T) {
	g := NewWithT(t)
	first := startDevUp(t, "--nodes", "2", "--zones", "zone-a,zone-b", "--traffic=false")
	kubectl(t, first.kubeconfig, "create", "configmap", "survivor", "--from-literal=k=v")
	g.Expect(first.cmd.Process.Kill()).To(Succeed())
	_ = first.wait(t)
	g.Eventually(func() []int { return processesUsing(first.stateDir) }).WithTimeout(10 * time.Second).Should(BeEmpty())

	second := startDevUpIn(t, first.stateDir, "--nodes", "2", "--zones", "zone-a,zone-b", "--keep-state", "--traffic=false")
	g.Expect(second.stderr.String()).To(ContainSubstring("did not stop cleanly"))
	g.Expect(kubectl(t, second.kubeconfig, "get", "configmap", "survivor", "-o", "jsonpath={.data.k}")).To(Equal("v"))
	g.Expect(second.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	g.Expect(second.wait(t)).To(Succeed())
}

// --- running the binary ------------------------------------------------------

type devUp struct {
	cmd        *exec.Cmd
	stateDir   string
	kubeconfig string
	// gateway and prometheus are the gateway's and Prometheus's URLs on
	// the ready line ("" without --traffic).
	gateway    string
	prometheus string
	stderr     *syncBuffer
	// done is closed once the process has exited with exitErr.
	done    chan struct{}
	exitErr error
}

func startDevUp(t *testing.T, args ...string) *devUp {
	return startDevUpIn(t, t.TempDir(), args...)
}

func startDevUpIn(t *testing.T, stateDir string, args ...string) *devUp {
	t.Helper()
	args = append([]string{"dev", "up", "--state-dir", stateDir, "--bin-dir", framework.BinDir(), "--source-dir", framework.RepoRoot()}, args...)
	cmd := exec.Command(cafeBinary(t), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	up := &devUp{cmd: cmd, stateDir: stateDir, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = up.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = up.wait(t)
	})

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, dev.ReadyPrefix) {
				ready <- line
			}
		}
		up.exitErr = cmd.Wait()
		close(up.done)
	}()
	select {
	case line := <-ready:
		fields := strings.Fields(strings.TrimPrefix(line, dev.ReadyPrefix))
		if len(fields) < 2 || fields[0] != "kubeconfig" {
			t.Fatalf("unexpected ready line %q", line)
		}
		up.kubeconfig = strings.TrimSuffix(fields[1], ";")
		if m := regexp.MustCompile(`; gateway (http://\S+) `).FindStringSubmatch(line); m != nil {
			up.gateway = m[1]
		}
		if m := regexp.MustCompile(`; Prometheus (http://\S+);`).FindStringSubmatch(line); m != nil {
			up.prometheus = m[1]
		}
	case <-up.done:
		t.Fatalf("cafe dev up exited before it was ready: %v\n%s", up.exitErr, up.stderr.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("cafe dev up printed no ready line in 5 minutes\n%s", up.stderr.String())
	}
	return up
}

// wait returns the exit error of cafe dev up (nil for exit 0); it fails the
// test if the process does not exit within a minute.
func (u *devUp) wait(t *testing.T) error {
	select {
	case <-u.done:
		return u.exitErr
	case <-time.After(time.Minute):
		t.Fatalf("cafe dev up did not exit within a minute\n%s", u.stderr.String())
		return nil
	}
}

// children reads the pids of the control-plane children from the state file.
func (u *devUp) children(t *testing.T) []int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(u.stateDir, "state.json"))
	if err != nil {
		t.Fatalf("reading state file: %v", err)
	}
	var s struct {
		Children []int `json:"children"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s.Children
}

// processesUsing lists live processes whose command line mentions dir.
func processesUsing(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if bytes.Contains(cmdline, []byte(dir)) && !isZombie(stat) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(stat []byte) bool {
	// The state follows the command name in parentheses: "pid (comm) Z ...".
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(framework.BinDir(), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// cafeBinary is cmd/cafe, built once per test binary.
func cafeBinary(t *testing.T) string {
	t.Helper()
	bin, err := framework.CafeBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec.Cmd and
// the test reading it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)
