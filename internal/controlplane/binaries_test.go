package controlplane

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

// writeModule creates a tiny tools module under root/hack/tools/<name>.
func writeModule(t *testing.T, root, name, mainBody string) {
	t.Helper()
	dir := filepath.Join(root, "hack", "tools", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":  "module example.com/" + name + "\n\ngo 1.26.0\n",
		"go.sum":  "",
		"main.go": "package main\n\nfunc main() {" + mainBody + "}\n",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEnsureBinaryBuildsOnceAndRebuildsWhenTheModuleChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go toolchain")
	}
	g := NewWithT(t)
	root, bin := t.TempDir(), t.TempDir()
	writeModule(t, root, "hello", "")
	b := Binary{Name: "hello", Module: "hack/tools/hello", Package: "."}
	opts := BuildOptions{RepoRoot: root, BinDir: bin}

	g.Expect(ensureBinary(context.Background(), opts, b)).To(Succeed())
	first, err := os.Stat(filepath.Join(bin, "hello"))
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(ensureBinary(context.Background(), opts, b)).To(Succeed())
	second, _ := os.Stat(filepath.Join(bin, "hello"))
	g.Expect(second.ModTime()).To(Equal(first.ModTime()), "a current binary must not be rebuilt")

	g.Expect(os.WriteFile(filepath.Join(root, "hack", "tools", "hello", "go.mod"), []byte("module example.com/hello\n\ngo 1.26\n"), 0o644)).To(Succeed())
	g.Expect(ensureBinary(context.Background(), opts, b)).To(Succeed())
	third, _ := os.Stat(filepath.Join(bin, "hello"))
	g.Expect(third.ModTime()).NotTo(Equal(first.ModTime()), "a changed tools module must trigger a rebuild")
}

func TestEnsureBinaryNamesTheBinaryAndTheStepThatFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go toolchain")
	}
	g := NewWithT(t)
	root, bin := t.TempDir(), t.TempDir()
	writeModule(t, root, "broken", " undefinedFunction() ")
	err := ensureBinary(context.Background(), BuildOptions{RepoRoot: root, BinDir: bin}, Binary{Name: "kube-broken", Module: "hack/tools/broken", Package: "."})

	var be *BuildError
	g.Expect(errors.As(err, &be)).To(BeTrue(), "got %v", err)
	g.Expect(be.Binary).To(Equal("kube-broken"))
	g.Expect(err.Error()).To(HavePrefix("building kube-broken: go build . in hack/tools/broken:"))
	g.Expect(err.Error()).To(ContainSubstring("undefinedFunction"))
	g.Expect(filepath.Join(bin, "kube-broken")).NotTo(BeAnExistingFile(), "a failed build leaves no binary behind")
}

func TestEnsureBinaryWithoutSourcesNeedsThePrebuiltBinary(t *testing.T) {
	g := NewWithT(t)
	err := ensureBinary(context.Background(), BuildOptions{BinDir: t.TempDir()}, Binary{Name: "etcd"})
	g.Expect(err).To(MatchError(ContainSubstring("building etcd: locate:")))
}

func TestFindRepoRootWalksUpToHackTools(t *testing.T) {
	g := NewWithT(t)
	root := t.TempDir()
	writeModule(t, root, "kube", "")
	deep := filepath.Join(root, "a", "b")
	g.Expect(os.MkdirAll(deep, 0o755)).To(Succeed())
	got, err := FindRepoRoot(deep)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(root))

	_, err = FindRepoRoot(t.TempDir())
	g.Expect(err).To(HaveOccurred())
}
