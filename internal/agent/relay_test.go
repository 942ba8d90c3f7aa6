package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// startEcho serves on loopback, answering each line with "echo: <line>",
// until the test ends.
func startEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				lines := bufio.NewScanner(c)
				for lines.Scan() {
					if _, err := io.WriteString(c, "echo: "+lines.Text()+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startRelay relays a loopback port to target until the returned cancel
// or the test's end, and returns the port's address and a channel closed
// once the relay has returned.
func startRelay(t *testing.T, target string) (string, context.CancelFunc, <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay(ctx, ln, target)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String(), cancel, done
}

func TestRelayJoinsEachConnectionToTheTarget(t *testing.T) {
	g := NewWithT(t)
	addr, _, _ := startRelay(t, startEcho(t))
	for i := range 3 { // several connections at once, each its own stream
		c, err := net.Dial("tcp", addr)
		g.Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		r := bufio.NewReader(c)
		for _, line := range []string{"a", strings.Repeat("x", 50_000)} {
			_, err = io.WriteString(c, line+"\n")
			g.Expect(err).NotTo(HaveOccurred())
			got, err := r.ReadString('\n')
			g.Expect(err).NotTo(HaveOccurred(), "connection %d", i)
			g.Expect(got).To(Equal("echo: " + line + "\n"))
		}
		// A half-close reaches the target, whose end of stream comes back.
		g.Expect(c.(*net.TCPConn).CloseWrite()).To(Succeed())
		g.Expect(c.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		rest, err := io.ReadAll(r)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(rest).To(BeEmpty())
	}
}

func TestRelayClosesEverythingWhenItEnds(t *testing.T) {
	g := NewWithT(t)
	addr, cancel, done := startRelay(t, startEcho(t))
	c, err := net.Dial("tcp", addr)
	g.Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	_, err = io.WriteString(c, "ping\n")
	g.Expect(err).NotTo(HaveOccurred())
	r := bufio.NewReader(c)
	_, err = r.ReadString('\n')
	g.Expect(err).NotTo(HaveOccurred())

	cancel()
	g.Eventually(done).WithTimeout(10 * time.Second).Should(BeClosed())
	g.Expect(c.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	_, err = r.ReadString('\n')
	g.Expect(err).To(MatchError(io.EOF), "the open connection was closed")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	g.Expect(err).To(HaveOccurred(), "nothing listens any more")
}

func TestRelayDropsAConnectionWhenTheTargetIsDown(t *testing.T) {
	g := NewWithT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	down := ln.Addr().String()
	g.Expect(ln.Close()).To(Succeed())
	addr, _, _ := startRelay(t, down)
	c, err := net.Dial("tcp", addr)
	g.Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	g.Expect(c.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	_, err = c.Read(make([]byte, 1))
	g.Expect(err).To(MatchError(io.EOF), "the client sees the connection closed, not a hang")
}

func TestRegistryOptions(t *testing.T) {
	valid := func() Options {
		return Options{Host: "h", Zone: "z", Address: "127.0.0.1", LeaseDuration: 40 * time.Second, RenewInterval: 10 * time.Second,
			WorkDir: "/tmp", HealthPeriod: time.Second, StopGrace: time.Second}
	}
	for _, tc := range []struct {
		name   string
		modify func(*Options)
		err    string
	}{
		{name: "no registry", modify: func(*Options) {}},
		{name: "loopback registry", modify: func(o *Options) { o.Registry = "http://127.0.0.1:2379" }},
		{name: "registry elsewhere", modify: func(o *Options) { o.Registry = "http://10.0.0.1:2379" }, err: "--registry"},
		{name: "registry by name", modify: func(o *Options) { o.Registry = "http://registry:2379" }, err: "--registry"},
		{name: "relay port out of range", modify: func(o *Options) { o.RegistryRelayPort = 70000 }, err: "--registry-relay-port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			o := valid()
			tc.modify(&o)
			err := o.Validate()
			if tc.err == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
		})
	}
}

// Without a network namespace the instances get the registry's URL as is.
func TestInstancesRegistryWithoutNamespace(t *testing.T) {
	g := NewWithT(t)
	a := &Agent{Options: Options{Registry: "http://127.0.0.1:2379", Address: "127.0.0.1"}}
	got, relayPort, err := a.instancesRegistry(t.Context())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal("http://127.0.0.1:2379"))
	g.Expect(relayPort).To(BeZero(), "no relay, no port reserved for it")
}

// The registry's URL reaches an instance's environment without changing
// what identifies its launch: an agent restarted with another --registry
// (or relay port) does not restart the instances it adopts.
func TestRegistryInTheEnvironmentNotInTheLaunch(t *testing.T) {
	g := NewWithT(t)
	inst := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: "h", Artifact: cafev1alpha1.ClassicArtifact{
			Command: []string{"bin/demo-app"}, Port: 8080, SHA256: strings.Repeat("a", 64),
			Env: []cafev1alpha1.ClassicEnvVar{{Name: "CAFE_CALL_SERVICE", Value: "shop/backend"}},
		}},
	}
	o := Options{Host: "h", Address: "198.19.224.1", WorkDir: t.TempDir()}
	without := newInstances(nil, o, "").launchSpec(inst)
	with := newInstances(nil, o, "http://198.19.224.1:10352").launchSpec(inst)
	g.Expect(without.Env).NotTo(ContainElement(HavePrefix(EnvRegistry + "=")))
	g.Expect(with.Env).To(ContainElement(EnvRegistry + "=http://198.19.224.1:10352"))
	g.Expect(with.Env).To(ContainElement("CAFE_CALL_SERVICE=shop/backend"))
	g.Expect(with.Launch).To(Equal(without.Launch))

	// An artifact that names its own registry wins: later in the list.
	inst.Spec.Artifact.Env = append(inst.Spec.Artifact.Env, cafev1alpha1.ClassicEnvVar{Name: EnvRegistry, Value: "http://127.0.0.1:2379"})
	env := newInstances(nil, o, "http://198.19.224.1:10352").launchSpec(inst).Env
	var values []string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, EnvRegistry+"="); ok {
			values = append(values, v)
		}
	}
	g.Expect(values).To(Equal([]string{"http://198.19.224.1:10352", "http://127.0.0.1:2379"}), "the last value is the one a process sees")
}
