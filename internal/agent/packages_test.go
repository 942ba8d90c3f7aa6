package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Package collection is pure bookkeeping over the agent's work directory
// and the instances its cache lists, so a fake client stands in for the
// cache here; the classicset envtest suite runs the agent for real.

// hostWith returns an agent's instances whose cache lists objs, with an
// unpacked package on disk for each of shas.
func hostWith(t *testing.T, shas []string, objs ...*cafev1alpha1.ClassicInstance) *instances {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := cafev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	r := newInstances(b.Build(), Options{Host: "vm-1", Address: "127.0.0.1", WorkDir: t.TempDir()}, "")
	for _, sha := range shas {
		if err := os.MkdirAll(filepath.Join(r.workDir, "packages", sha, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func packageOnDisk(r *instances, sha string) func() bool {
	return func() bool {
		_, err := os.Stat(filepath.Join(r.workDir, "packages", sha))
		return err == nil
	}
}

func instanceOf(sha string) *cafev1alpha1.ClassicInstance {
	return &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web-" + sha},
		Spec: cafev1alpha1.ClassicInstanceSpec{HostName: "vm-1",
			Artifact: cafev1alpha1.ClassicArtifact{SHA256: sha}},
	}
}

// Packages go when nothing names them; one an instance's spec names or a
// process runs from stays.
func TestCollectPackagesKeepsWhatIsNamedOrRunning(t *testing.T) {
	g := NewWithT(t)
	r := hostWith(t, []string{"named", "running", "unused"}, instanceOf("named"))
	r.children["team/old"] = &child{rec: &processRecord{SHA256: "running"}}

	g.Expect(r.collectPackages(context.Background())).To(Succeed())
	g.Expect(packageOnDisk(r, "named")()).To(BeTrue(), "an instance's spec names it")
	g.Expect(packageOnDisk(r, "running")()).To(BeTrue(), "a process runs from it")
	g.Expect(packageOnDisk(r, "unused")()).To(BeFalse(), "nothing needs it")
}

// A launch pins its package from before the fetch until its process is
// recorded: a collection in between keeps it, even though the cache it
// listed does not have the instance yet; once unpinned it goes.
func TestCollectPackagesKeepsAPinnedPackage(t *testing.T) {
	g := NewWithT(t)
	r := hostWith(t, []string{"v2"})
	unpin := r.pin("v2")
	g.Expect(r.collectPackages(context.Background())).To(Succeed())
	g.Expect(packageOnDisk(r, "v2")()).To(BeTrue())

	unpin()
	g.Expect(r.collectPackages(context.Background())).To(Succeed())
	g.Expect(packageOnDisk(r, "v2")()).To(BeFalse())
}

// An unpack in progress (its temporary directory beside the packages)
// belongs to the package it becomes: kept while that package is needed,
// removed with it (a crashed agent's leftover) when not.
func TestCollectPackagesTreatsAnUnpackAsItsPackage(t *testing.T) {
	g := NewWithT(t)
	r := hostWith(t, []string{".v2.unpack-1953176024", ".v3.unpack-2248523411"})
	defer r.pin("v2")()

	g.Expect(r.collectPackages(context.Background())).To(Succeed())
	g.Expect(packageOnDisk(r, ".v2.unpack-1953176024")()).To(BeTrue(), "v2 is being launched")
	g.Expect(packageOnDisk(r, ".v3.unpack-2248523411")()).To(BeFalse(), "nothing needs v3")
}
