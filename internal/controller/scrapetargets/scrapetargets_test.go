package scrapetargets_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/scrapetargets"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/test/framework"
)

var targetsFile = filepath.Join(os.TempDir(), "cafe-scrapetargets-test", "targets.json")

// One real kube-apiserver with CAFE installed and CAFE's manager writing
// the scrape targets file.
var suite = framework.ControllerSuite{Options: manager.Options{ScrapeTargetsFile: targetsFile}}

func TestMain(m *testing.M) {
	_ = os.RemoveAll(filepath.Dir(targetsFile))
	suite.Prepare = func(ctx context.Context, _ client.Client) error { return install.CAFE(ctx, suite.Config) }
	os.Exit(suite.Main(m))
}

// targetsIn reads the file's groups of namespace ns, by name.
func targetsIn(g Gomega, ns string) func() map[string]scrapetargets.Group {
	return func() map[string]scrapetargets.Group {
		data, err := os.ReadFile(targetsFile)
		if os.IsNotExist(err) {
			return nil
		}
		g.Expect(err).NotTo(HaveOccurred())
		var groups []scrapetargets.Group
		g.Expect(json.Unmarshal(data, &groups)).To(Succeed(), "the file is valid file_sd JSON: %s", data)
		out := map[string]scrapetargets.Group{}
		for _, grp := range groups {
			if grp.Labels["namespace"] == ns {
				out[grp.Labels["cafe_name"]] = grp
			}
		}
		return out
	}
}

// The file lists CAFE's running pods at IP:port and classic instances at
// their address, with zone and version labels; a release changes a
// target's version label, a deleted instance leaves the file.
func TestTheTargetsFileListsPodsAndClassicInstances(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + ns, Labels: map[string]string{cafev1alpha1.ZoneNodeLabel: "zone-a"}}}
	g.Expect(suite.Client.Create(ctx, node)).To(Succeed())
	host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-" + ns}, Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-c", Address: "198.19.224.9"}}
	g.Expect(suite.Client.Create(ctx, host)).To(Succeed())

	labels := map[string]string{cafev1alpha1.AppLabel: "web", cafev1alpha1.UnitLabel: "zone-a", cafev1alpha1.RevisionHashLabel: "h1", cafev1alpha1.AppRevisionLabel: "web-r1"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-1", Labels: labels},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "app", Image: "web:v1",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}
	g.Expect(suite.Client.Create(ctx, pod)).To(Succeed())
	pending := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-2", Labels: labels}, Spec: pod.Spec}
	g.Expect(suite.Client.Create(ctx, pending)).To(Succeed())
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "198.18.0.7", PodIPs: []corev1.PodIP{{IP: "198.18.0.7"}}}
	g.Expect(suite.Client.Status().Update(ctx, pod)).To(Succeed())

	inst := &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-vm", Labels: map[string]string{cafev1alpha1.AppLabel: "web", cafev1alpha1.UnitLabel: "zone-c", cafev1alpha1.AppRevisionLabel: "web-r1"}},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: host.Name, Artifact: cafev1alpha1.ClassicArtifact{
			URL: "http://127.0.0.1:1/a.tar.gz", SHA256: "0000000000000000000000000000000000000000000000000000000000000000", Command: []string{"bin/a"}, Port: 8080}},
	}
	g.Expect(suite.Client.Create(ctx, inst)).To(Succeed())
	inst.Status.Address = "198.19.224.9:8080"
	g.Expect(suite.Client.Status().Update(ctx, inst)).To(Succeed())

	g.Eventually(targetsIn(g, ns)).Should(Equal(map[string]scrapetargets.Group{
		"web-1": {Targets: []string{"198.18.0.7:8080"}, Labels: map[string]string{
			"cafe_kind": "pod", "namespace": ns, "cafe_name": "web-1", "app": "web", "unit": "zone-a", "zone": "zone-a", "version": "web-r1"}},
		"web-vm": {Targets: []string{"198.19.224.9:8080"}, Labels: map[string]string{
			"cafe_kind": "classic", "namespace": ns, "cafe_name": "web-vm", "app": "web", "unit": "zone-c", "zone": "zone-c", "host": host.Name, "version": "web-r1"}},
	}), "the pending pod (no IP yet) is not listed")

	// A release in place changes the version label, not the target.
	g.Expect(framework.Update(ctx, suite.Client, pod, func(p *corev1.Pod) { p.Labels[cafev1alpha1.AppRevisionLabel] = "web-r2" })).To(Succeed())
	g.Eventually(func() map[string]string { return targetsIn(g, ns)()["web-1"].Labels }).Should(HaveKeyWithValue("version", "web-r2"))
	g.Expect(targetsIn(g, ns)()["web-1"].Targets).To(Equal([]string{"198.18.0.7:8080"}))

	g.Expect(suite.Client.Delete(ctx, inst)).To(Succeed())
	g.Eventually(targetsIn(g, ns)).ShouldNot(HaveKey("web-vm"))
}
