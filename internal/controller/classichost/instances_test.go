package classichost_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/test/framework"
)

// freePort is a TCP port nothing listens on at address now.
func freePort(g Gomega, address string) int32 {
	ln, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	g.Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func newInstance(ns, name, host string, a *cafev1alpha1.ClassicArtifact) *cafev1alpha1.ClassicInstance {
	return &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       cafev1alpha1.ClassicInstanceSpec{HostName: host, Artifact: *a},
	}
}

func instanceOf(ctx context.Context, g Gomega, inst *cafev1alpha1.ClassicInstance) func() *cafev1alpha1.ClassicInstance {
	return func() *cafev1alpha1.ClassicInstance {
		got := &cafev1alpha1.ClassicInstance{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(inst), got)).To(Succeed())
		return got
	}
}

// runningPackage matches an instance Ready on the package with sha.
func runningPackage(sha string) OmegaMatcher {
	return And(
		HaveField("Status.Phase", cafev1alpha1.ClassicInstanceRunning),
		HaveField("Status.Process.SHA256", sha),
		WithTransform(func(i *cafev1alpha1.ClassicInstance) bool {
			return meta.IsStatusConditionTrue(i.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition)
		}, BeTrue()),
	)
}

// readyReason is the reason of the instance's Ready condition.
func readyReason(i *cafev1alpha1.ClassicInstance) string {
	if c := meta.FindStatusCondition(i.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition); c != nil {
		return c.Reason
	}
	return ""
}

// answer asks the instance at address for / and returns the version and
// instance name it answers with.
func answer(address string) (version, name string, err error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + address + "/")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	var a appanswer.Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	if resp.Header.Get(appanswer.VersionHeader) != a.Version {
		return "", "", fmt.Errorf("header %s %q, body %q", appanswer.VersionHeader, resp.Header.Get(appanswer.VersionHeader), a.Version)
	}
	return a.Version, a.Pod, nil
}

// An agent runs the instances placed on its host from their packages:
// fetched from the artifact store, checked, started on the host's address
// and health-checked before they are Ready. A new package replaces the
// process; a package whose checksum does not match fails the instance with
// that reason and leaves its running process and every other instance
// alone; a deleted instance's process stops.
func TestAnAgentRunsItsInstancesFromCheckedPackages(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	host, address := "vm-"+ns, "127.0.43.1"
	opts := framework.AgentOptions(t, host, "zone-c", address)
	suite.RunAgent(t, g, opts)
	port := freePort(g, address)

	web1 := newInstance(ns, "web-1", host, d.Artifact("v1", port))
	web2 := newInstance(ns, "web-2", host, d.Artifact("v1", freePort(g, address)))
	g.Expect(suite.Client.Create(ctx, web1)).To(Succeed())
	g.Expect(suite.Client.Create(ctx, web2)).To(Succeed())
	v1, v2 := d.Artifact("v1", port), d.Artifact("v2", port)
	g.Eventually(instanceOf(ctx, g, web1)).Should(runningPackage(v1.SHA256))
	g.Eventually(instanceOf(ctx, g, web2)).Should(runningPackage(v1.SHA256))
	got := instanceOf(ctx, g, web1)()
	g.Expect(got.Status.Address).To(Equal(fmt.Sprintf("%s:%d", address, port)))
	g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	version, name, err := answer(got.Status.Address)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect([]string{version, name}).To(Equal([]string{"v1", "web-1"}), "the instance's process answers on the host's address")
	other := instanceOf(ctx, g, web2)().Status.Process.PID

	// A new package replaces the process.
	g.Expect(suite.Client.Patch(ctx, web1, patchArtifact(v2))).To(Succeed())
	g.Eventually(instanceOf(ctx, g, web1)).Should(runningPackage(v2.SHA256))
	g.Eventually(func() (string, error) { v, _, err := answer(got.Status.Address); return v, err }).Should(Equal("v2"))
	v2PID := instanceOf(ctx, g, web1)().Status.Process.PID
	g.Expect(v2PID).NotTo(Equal(got.Status.Process.PID))

	// A package whose bytes do not match its checksum is not run. (The
	// agent keeps checked packages by checksum, so the forged checksum is
	// one of no package the host has.)
	forged := d.Artifact("v3-fail", port)
	forged.SHA256 = fmt.Sprintf("%x", sha256.Sum256([]byte("not the package")))
	g.Expect(suite.Client.Patch(ctx, web1, patchArtifact(forged))).To(Succeed())
	g.Eventually(instanceOf(ctx, g, web1)).Should(And(
		HaveField("Status.Phase", cafev1alpha1.ClassicInstanceFailed),
		WithTransform(readyReason, Equal(cafev1alpha1.ClassicInstanceReasonChecksumMismatch)),
	))
	failed := instanceOf(ctx, g, web1)()
	c := meta.FindStatusCondition(failed.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition)
	g.Expect(c.Message).To(ContainSubstring(forged.SHA256), "the message names the checksum the revision gave")
	g.Expect(failed.Status.Process).NotTo(BeNil())
	g.Expect(failed.Status.Process.PID).To(Equal(v2PID), "the running process is left as it was")
	version, _, err = answer(got.Status.Address)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(version).To(Equal("v2"))
	g.Expect(instanceOf(ctx, g, web2)()).To(And(runningPackage(v1.SHA256), HaveField("Status.Process.PID", other)), "no other instance is touched")

	// A deleted instance's process stops.
	g.Expect(suite.Client.Delete(ctx, web1)).To(Succeed())
	g.Eventually(func() error { _, _, err := answer(got.Status.Address); return err }).Should(MatchError(ContainSubstring("connection refused")))
	g.Eventually(func() error { return syscall.Kill(int(v2PID), 0) }).Should(MatchError(syscall.ESRCH), "the process is gone (exited and reaped)")
	g.Consistently(instanceOf(ctx, g, web2)).Should(And(runningPackage(v1.SHA256), HaveField("Status.Process.PID", other)))
	g.Eventually(func() ([]string, error) { return dirNames(filepath.Join(opts.WorkDir, "packages")) }).Should(ConsistOf(v1.SHA256),
		"the package no instance uses any more is removed, the one web-2 runs is kept")
}

func dirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

// The agent keeps no instance state only in memory: restarted, it adopts
// the processes it started (they outlive it, as containers outlive a
// kubelet restart), restarts one that exits, and stops the process of an
// instance deleted while it was down.
func TestARestartedAgentAdoptsItsInstances(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	host, address := "vm-"+ns, "127.0.43.2"
	opts := framework.AgentOptions(t, host, "zone-c", address)
	stop := suite.RunAgent(t, g, opts)
	a := d.Artifact("v1", freePort(g, address))
	keep, gone := newInstance(ns, "keep", host, a), newInstance(ns, "gone", host, d.Artifact("v1", freePort(g, address)))
	g.Expect(suite.Client.Create(ctx, keep)).To(Succeed())
	g.Expect(suite.Client.Create(ctx, gone)).To(Succeed())
	g.Eventually(instanceOf(ctx, g, keep)).Should(runningPackage(a.SHA256))
	g.Eventually(instanceOf(ctx, g, gone)).Should(runningPackage(a.SHA256))
	before := instanceOf(ctx, g, keep)()
	goneAddress := instanceOf(ctx, g, gone)().Status.Address

	stop()
	_, _, err := answer(before.Status.Address)
	g.Expect(err).NotTo(HaveOccurred(), "the instance serves while its agent is down")
	g.Expect(suite.Client.Delete(ctx, gone)).To(Succeed())

	suite.RunAgent(t, g, opts)
	g.Eventually(func() error { _, _, err := answer(goneAddress); return err }).Should(HaveOccurred(), "the orphan is stopped")
	g.Consistently(instanceOf(ctx, g, keep), 2*time.Second).Should(And(
		runningPackage(a.SHA256), HaveField("Status.Process.PID", before.Status.Process.PID), HaveField("Status.Restarts", int32(0))),
		"the running process is adopted, not restarted")

	g.Expect(syscall.Kill(int(before.Status.Process.PID), syscall.SIGKILL)).To(Succeed())
	g.Eventually(instanceOf(ctx, g, keep)).Should(And(runningPackage(a.SHA256), HaveField("Status.Restarts", int32(1)),
		WithTransform(func(i *cafev1alpha1.ClassicInstance) int64 { return i.Status.Process.PID }, Not(Equal(before.Status.Process.PID)))),
		"an adopted process that dies is restarted")
}

// A host agent writes the status of its own host's instances and nothing
// else of any instance: not their spec, not another host's, no create or
// delete (the cafe-host-agent-writes policy and RBAC).
func TestAHostAgentWritesOnlyItsOwnInstancesStatus(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	a, b := "vm-a-"+ns, "vm-b-"+ns
	asA, _ := suite.HostIdentity(t, g, a)
	art := &cafev1alpha1.ClassicArtifact{URL: "http://127.0.0.1:1/p.tar.gz", SHA256: strings.Repeat("a", 64), Command: []string{"bin/app"}, Port: 8080}
	onA, onB := newInstance(ns, "on-a", a, art), newInstance(ns, "on-b", b, art)
	g.Expect(suite.Client.Create(ctx, onA)).To(Succeed())
	g.Expect(suite.Client.Create(ctx, onB)).To(Succeed())

	forged := func(i *cafev1alpha1.ClassicInstance) *cafev1alpha1.ClassicInstance {
		i = i.DeepCopy()
		i.Status.Phase = cafev1alpha1.ClassicInstanceRunning
		meta.SetStatusCondition(&i.Status.Conditions, metav1.Condition{Type: cafev1alpha1.ClassicInstanceReadyCondition, Status: metav1.ConditionTrue, Reason: "Forged", Message: "forged"})
		return i
	}
	notHers := And(Satisfy(apierrors.IsForbidden), MatchError(ContainSubstring("host agent "+a+" may write only the status of its own host's ClassicInstances")))
	// The policy is loaded a moment after it is installed: wait on a
	// request that stores nothing.
	g.Eventually(func() error { return asA.Status().Update(ctx, forged(onB), client.DryRunAll) }).Should(notHers, "B's instance's status")
	g.Expect(asA.Status().Update(ctx, forged(onB))).To(notHers, "B's instance's status")
	g.Expect(asA.Status().Update(ctx, forged(onA))).To(Succeed(), "its own instance's status")

	mine := instanceOf(ctx, g, onA)()
	mine.Spec.Artifact.Port = 9090
	g.Expect(asA.Update(ctx, mine)).To(Satisfy(apierrors.IsForbidden), "its own instance's spec (RBAC)")
	g.Expect(asA.Create(ctx, newInstance(ns, "new", a, art))).To(Satisfy(apierrors.IsForbidden), "create an instance (RBAC)")
	g.Expect(asA.Delete(ctx, onB)).To(Satisfy(apierrors.IsForbidden), "delete an instance (RBAC)")
	g.Expect(instanceOf(ctx, g, onB)()).To(And(HaveField("Status.Phase", ""), HaveField("Status.Conditions", BeEmpty())), "B's instance is as it was")

	list := &cafev1alpha1.ClassicInstanceList{}
	g.Expect(asA.List(ctx, list, client.InNamespace(ns), client.MatchingFields{cafev1alpha1.ClassicInstanceHostField: a})).To(Succeed(), "agents list by host")
	g.Expect(list.Items).To(ConsistOf(HaveField("Name", "on-a")))
}

// The schema refuses a malformed instance with the field named, and keeps
// an instance on its host.
func TestClassicInstanceValidation(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	good := cafev1alpha1.ClassicArtifact{URL: "http://127.0.0.1:8000/app.tar.gz", SHA256: strings.Repeat("0", 64), Command: []string{"bin/app"}, Port: 8080}
	for _, tc := range []struct {
		name    string
		edit    func(*cafev1alpha1.ClassicInstanceSpec)
		message string
	}{
		{"no-host", func(s *cafev1alpha1.ClassicInstanceSpec) { s.HostName = "" }, "spec.hostName"},
		{"ftp", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.URL = "ftp://127.0.0.1/app.tar.gz" }, `spec.artifact.url: Invalid value: "ftp://127.0.0.1/app.tar.gz": must be an http or https URL`},
		{"short-sha", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.SHA256 = "abc" }, "spec.artifact.sha256"},
		{"upper-sha", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.SHA256 = strings.Repeat("A", 64) }, "spec.artifact.sha256"},
		{"no-command", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.Command = nil }, "spec.artifact.command"},
		{"empty-program", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.Command = []string{""} }, "command[0], the program, must not be empty"},
		{"port-zero", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.Port = 0 }, "spec.artifact.port"},
		{"port-high", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.Port = 70000 }, "spec.artifact.port"},
		{"health-path", func(s *cafev1alpha1.ClassicInstanceSpec) { s.Artifact.HealthPath = "healthz" }, "spec.artifact.healthPath"},
		{"env-name", func(s *cafev1alpha1.ClassicInstanceSpec) {
			s.Artifact.Env = []cafev1alpha1.ClassicEnvVar{{Name: "1BAD", Value: "x"}}
		}, "spec.artifact.env[0].name"},
	} {
		spec := cafev1alpha1.ClassicInstanceSpec{HostName: "vm-1", Artifact: *good.DeepCopy()}
		tc.edit(&spec)
		i := &cafev1alpha1.ClassicInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}, Spec: spec}
		g.Expect(suite.Client.Create(ctx, i)).To(And(Satisfy(apierrors.IsInvalid), MatchError(ContainSubstring(tc.message))), tc.name)
	}
	i := &cafev1alpha1.ClassicInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stays"}, Spec: cafev1alpha1.ClassicInstanceSpec{HostName: "vm-1", Artifact: good}}
	g.Expect(suite.Client.Create(ctx, i)).To(Succeed())
	g.Expect(i.Spec.Artifact.HealthPath).To(Equal("/healthz"), "defaulted")
	g.Expect(suite.Client.Patch(ctx, i, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"hostName":"vm-2"}}`)))).To(MatchError(ContainSubstring("spec.hostName is immutable")))
}

func patchArtifact(a *cafev1alpha1.ClassicArtifact) client.Patch {
	body, _ := json.Marshal(map[string]any{"spec": map[string]any{"artifact": a}}) // plain fields: cannot fail
	return client.RawPatch(types.MergePatchType, body)
}

// A deleted instance that a finalizer holds (a traffic provider's, while
// its traffic system may still send it requests) keeps serving: the agent
// stops its process only once the object is gone.
func TestADeletedInstanceServesUntilItIsGone(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	host, address := "vm-"+ns, "127.0.43.4"
	suite.RunAgent(t, g, framework.AgentOptions(t, host, "zone-c", address))
	a := d.Artifact("v1", freePort(g, address))
	inst := newInstance(ns, "held", host, a)
	inst.Finalizers = []string{cafev1alpha1.TrafficFinalizer("test")}
	g.Expect(suite.Client.Create(ctx, inst)).To(Succeed())
	g.Eventually(instanceOf(ctx, g, inst)).Should(runningPackage(a.SHA256))
	addr := instanceOf(ctx, g, inst)().Status.Address

	g.Expect(suite.Client.Delete(ctx, inst)).To(Succeed())
	// The agent has acted on the deletion: it reports on the deleting
	// instance (the deletion is a new generation).
	g.Eventually(instanceOf(ctx, g, inst)).Should(Satisfy(func(i *cafev1alpha1.ClassicInstance) bool {
		return !i.DeletionTimestamp.IsZero() && i.Status.ObservedGeneration == i.Generation
	}))
	g.Consistently(func() error { _, _, err := answer(addr); return err }).Should(Succeed(), "stopped while a finalizer holds the instance")

	g.Expect(suite.Client.Patch(ctx, inst, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())
	g.Eventually(func() error { _, _, err := answer(addr); return err }).Should(MatchError(ContainSubstring("connection refused")), "stopped once the instance is gone")
}

// An instance placed on the port of another instance of the host whose
// process has not stopped (here held by a traffic finalizer after its
// deletion) waits for the port, saying which instance holds it, rather
// than start a process that cannot listen and count its restarts; it
// starts once that process is gone.
func TestAnInstanceWaitsForThePortAnotherInstanceStillHolds(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	d := framework.DemoApp(g)
	host, address := "vm-"+ns, "127.0.43.5"
	suite.RunAgent(t, g, framework.AgentOptions(t, host, "zone-c", address))
	port := freePort(g, address)
	leaving := newInstance(ns, "leaving", host, d.Artifact("v1", port))
	leaving.Finalizers = []string{cafev1alpha1.TrafficFinalizer("test")}
	g.Expect(suite.Client.Create(ctx, leaving)).To(Succeed())
	g.Eventually(instanceOf(ctx, g, leaving)).Should(runningPackage(leaving.Spec.Artifact.SHA256))
	addr := instanceOf(ctx, g, leaving)().Status.Address
	g.Expect(suite.Client.Delete(ctx, leaving)).To(Succeed())

	arriving := newInstance(ns, "arriving", host, d.Artifact("v2", port))
	g.Expect(suite.Client.Create(ctx, arriving)).To(Succeed())
	waiting := And(
		HaveField("Status.Phase", cafev1alpha1.ClassicInstanceStarting),
		HaveField("Status.Process", BeNil()),
		HaveField("Status.Restarts", int32(0)),
		WithTransform(readyReason, Equal(cafev1alpha1.ClassicInstanceReasonPortBusy)),
		WithTransform(func(i *cafev1alpha1.ClassicInstance) string {
			return meta.FindStatusCondition(i.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition).Message
		}, And(ContainSubstring(fmt.Sprint(port)), ContainSubstring(ns+"/leaving"))),
	)
	g.Eventually(instanceOf(ctx, g, arriving)).Should(waiting)
	g.Consistently(instanceOf(ctx, g, arriving)).Should(waiting, "no process started while the port is held")
	version, name, err := answer(addr)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect([]string{version, name}).To(Equal([]string{"v1", "leaving"}), "the leaving instance still serves")

	g.Expect(suite.Client.Patch(ctx, leaving, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())
	g.Eventually(instanceOf(ctx, g, arriving)).Should(And(runningPackage(arriving.Spec.Artifact.SHA256), HaveField("Status.Restarts", int32(0))))
	g.Eventually(func() (string, error) { v, _, err := answer(addr); return v, err }).Should(Equal("v2"))
}
