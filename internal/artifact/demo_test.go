package artifact

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/appanswer"
)

// buildDemoApp builds examples/demo-app and returns the binary's path.
func buildDemoApp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), DemoApp)
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cafe-io/cafe/examples/demo-app").CombinedOutput()
	if err != nil {
		t.Fatalf("go build examples/demo-app: %v\n%s", err, out)
	}
	return bin
}

// instance is a running demo app.
type instance struct {
	cmd  *exec.Cmd
	addr string
	// exited is closed once the process has exited and its log is read;
	// waitErr is then Wait's result.
	exited  chan struct{}
	waitErr error
}

// listening matches the demo app's log line once it listens.
var listening = regexp.MustCompile(`msg=Listening address=(\S+)`)

// startInstance starts the demo app of the unpacked package dir on a
// free port of 127.0.0.1 (--listen 127.0.0.1:0; the app logs the
// address it got) and waits until its /healthz answers.
func startInstance(t *testing.T, dir, name string) *instance {
	t.Helper()
	g := NewWithT(t)
	cmd := exec.Command(filepath.Join(dir, "bin", DemoApp), "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CAFE_INSTANCE="+name, "CAFE_NAMESPACE=shop")
	stderr, err := cmd.StderrPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())
	in := &instance{cmd: cmd, exited: make(chan struct{})}
	t.Cleanup(func() { // a failed test leaves no process, and no log after its end
		_ = cmd.Process.Kill()
		<-in.exited
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("%s: %s", name, sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		in.waitErr = cmd.Wait() // after stderr is read, as Wait requires
		close(in.exited)
	}()
	g.Eventually(addr).WithTimeout(30*time.Second).Should(Receive(&in.addr), "%s logs the address it listens on", name)
	g.Eventually(func(g Gomega) {
		resp, err := http.Get("http://" + in.addr + appanswer.HealthPath)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	return in
}

// stop sends SIGTERM and expects exit code 0.
func (in *instance) stop(g Gomega) {
	g.Expect(in.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	g.Eventually(in.exited).WithTimeout(30 * time.Second).Should(BeClosed())
	g.Expect(in.waitErr).NotTo(HaveOccurred(), "exit code 0 after SIGTERM")
	g.Expect(in.cmd.ProcessState.ExitCode()).To(BeZero())
}

func TestDemoPackagesRunTheDemoApp(t *testing.T) {
	g := NewWithT(t)
	bin := buildDemoApp(t)
	storeDir := t.TempDir()
	pkgs, err := BuildDemoPackages(bin, storeDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pkgs).To(HaveLen(3))
	for i, want := range []Package{
		{Name: DemoApp, Version: "v1", File: "demo-app-v1.tar.gz"},
		{Name: DemoApp, Version: "v2", File: "demo-app-v2.tar.gz"},
		{Name: DemoApp, Version: "v3-fail", File: "demo-app-v3-fail.tar.gz"},
	} {
		want.SHA256 = sha256File(t, filepath.Join(storeDir, want.File))
		g.Expect(pkgs[i]).To(Equal(want))
	}
	again, err := BuildDemoPackages(bin, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(pkgs), "the packages are reproducible")

	// As an agent would: download from the store, verify, unpack, start.
	store := loopbackServer(t, (&Store{Dir: storeDir}).Handler())
	host := t.TempDir()
	unpack := func(p Package) string {
		archive := filepath.Join(host, p.File)
		g.Expect(Fetch(t.Context(), store.Client(), store.URL+"/"+p.File, p.SHA256, archive)).To(Succeed())
		dir := filepath.Join(host, "instances", p.Version)
		g.Expect(Unpack(archive, dir)).To(Succeed())
		fi, err := os.Stat(filepath.Join(dir, "bin", DemoApp))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o755)))
		return dir
	}
	failing := startInstance(t, unpack(pkgs[2]), "web-3")
	healthy := startInstance(t, unpack(pkgs[0]), "web-1")

	resp, err := http.Get("http://" + failing.addr + "/checkout")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusInternalServerError))
	g.Expect(resp.Header.Get(appanswer.VersionHeader)).To(Equal("v3-fail"))
	g.Expect(resp.Header.Get(appanswer.PodHeader)).To(Equal("web-3"))

	resp, err = http.Get("http://" + healthy.addr + "/checkout")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var a appanswer.Answer
	g.Expect(json.NewDecoder(resp.Body).Decode(&a)).To(Succeed())
	g.Expect(a).To(Equal(appanswer.Answer{Pod: "web-1", Namespace: "shop", Container: DemoApp, Image: "demo-app:v1", Version: "v1"}))

	failing.stop(g)
	healthy.stop(g)
}
