package controlplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/flock"
)

// Binary is one executable of the local control plane and how to build it
// from a pinned tools module under hack/tools.
type Binary struct {
	// Name is the file name under the bin directory.
	Name string
	// Module is the tools module directory, relative to the repository root.
	Module string
	// Package is the Go package of the main function.
	Package string
	// LDFlags are extra linker flags (version stamping).
	LDFlags string
	// Overlay replaces files of a dependency at build time: each entry's
	// File, relative to the directory of its Module, is built from With,
	// relative to the repository root (patchModules).
	Overlay []OverlayFile
}

// OverlayFile is one file of a dependency that a build replaces.
type OverlayFile struct {
	Module, File, With string
}

// kubeVersionLDFlags stamps the Kubernetes binaries with the version the tools
// module pins, so `kubectl version` and the apiserver's /version tell the truth
// instead of v0.0.0-master.
const kubeVersionLDFlags = "-X k8s.io/component-base/version.gitVersion=v1.37.2 " +
	"-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 " +
	"-X k8s.io/client-go/pkg/version.gitVersion=v1.37.2 " +
	"-X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"

// Binaries lists everything the local control plane and envtest need, in
// build order (smallest first, so a broken toolchain fails fast).
var Binaries = []Binary{
	{Name: "etcd", Module: "hack/tools/etcd", Package: "go.etcd.io/etcd/server/v3"},
	{Name: "kwok", Module: "hack/tools/kwok", Package: "sigs.k8s.io/kwok/cmd/kwok", Overlay: []OverlayFile{
		// Deletes with the pod's UID, as the kubelet does (hack/tools/kwok/overlay/README.md).
		{Module: "sigs.k8s.io/kwok", File: "pkg/kwok/controllers/pod_controller.go", With: "hack/tools/kwok/overlay/pod_controller.go.overlay"},
	}},
	{Name: "kube-apiserver", Module: "hack/tools/kube", Package: "k8s.io/kubernetes/cmd/kube-apiserver", LDFlags: kubeVersionLDFlags},
	{Name: "kube-controller-manager", Module: "hack/tools/kube", Package: "k8s.io/kubernetes/cmd/kube-controller-manager", LDFlags: kubeVersionLDFlags},
	{Name: "kube-scheduler", Module: "hack/tools/kube", Package: "k8s.io/kubernetes/cmd/kube-scheduler", LDFlags: kubeVersionLDFlags},
	{Name: "kubectl", Module: "hack/tools/kube", Package: "k8s.io/kubernetes/cmd/kubectl", LDFlags: kubeVersionLDFlags},
	// The Gateway API implementation in front of the simulated pods (docs/traffic.md).
	{Name: "traefik", Module: "hack/tools/traefik", Package: "github.com/traefik/traefik/v3/cmd/traefik", LDFlags: traefikVersionLDFlags},
}

// KruiseManager is OpenKruise's controller manager (v1.8.2, the module
// hack/tools/kruise pins), the peer `make bench` releases a CloneSet with
// beside CAFE. Only the benchmark builds it (EnsureBinary): neither the
// tests nor `cafe dev up` need it.
var KruiseManager = Binary{Name: "kruise-manager", Module: "hack/tools/kruise", Package: "github.com/openkruise/kruise"}

// traefikVersionLDFlags stamps Traefik's version so its API and logs name it.
const traefikVersionLDFlags = "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12"

// BuildOptions say where the sources and the cached binaries are.
type BuildOptions struct {
	// RepoRoot holds hack/tools/*; empty means the binaries must already exist.
	RepoRoot string
	// BinDir receives the binaries.
	BinDir string
	// Out receives one progress line per binary built.
	Out io.Writer
}

// BuildError names the binary and the step that failed.
type BuildError struct {
	Binary string
	Step   string
	Err    error
	Output string
}

func (e *BuildError) Error() string {
	msg := fmt.Sprintf("building %s: %s: %v", e.Binary, e.Step, e.Err)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

func (e *BuildError) Unwrap() error { return e.Err }

// EnsureBinaries builds every missing or outdated binary into BinDir. A binary
// is outdated when the stamp written beside it does not match the current
// tools module (go.mod, go.sum, package and flags). Concurrent callers (test
// packages run in parallel) serialise on a file lock.
func EnsureBinaries(ctx context.Context, opts BuildOptions) error {
	return ensureLocked(ctx, opts, Binaries)
}

// EnsureBinary builds b into BinDir unless an up-to-date build is there,
// like EnsureBinaries, for a binary outside Binaries (KruiseManager).
func EnsureBinary(ctx context.Context, opts BuildOptions, b Binary) error {
	return ensureLocked(ctx, opts, []Binary{b})
}

// ensureLocked builds what bins need, holding the bin directory's lock.
func ensureLocked(ctx context.Context, opts BuildOptions, bins []Binary) error {
	if err := os.MkdirAll(opts.BinDir, 0o755); err != nil {
		return fmt.Errorf("creating bin directory: %w", err)
	}
	unlock, err := flock.Lock(filepath.Join(opts.BinDir, ".build.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	for _, b := range bins {
		if err := ensureBinary(ctx, opts, b); err != nil {
			return err
		}
	}
	return nil
}

func ensureBinary(ctx context.Context, opts BuildOptions, b Binary) error {
	target := filepath.Join(opts.BinDir, b.Name)
	stampPath := filepath.Join(opts.BinDir, ".stamps", b.Name)
	if opts.RepoRoot == "" {
		if _, err := os.Stat(target); err != nil {
			return &BuildError{Binary: b.Name, Step: "locate", Err: fmt.Errorf("%s is missing and no source directory was given to build it", target)}
		}
		return nil
	}
	stamp, err := binaryStamp(opts.RepoRoot, b)
	if err != nil {
		return &BuildError{Binary: b.Name, Step: "read tools module", Err: err}
	}
	if have, err := os.ReadFile(stampPath); err == nil && string(have) == stamp {
		if _, err := os.Stat(target); err == nil {
			return nil
		}
	}

	start := time.Now()
	if opts.Out != nil {
		fmt.Fprintf(opts.Out, "building %s (cached under %s afterwards)\n", b.Name, opts.BinDir)
	}
	tmp := target + ".tmp"
	args := []string{"build", "-ldflags", strings.TrimSpace("-s -w " + b.LDFlags), "-o", tmp}
	if len(b.Overlay) > 0 {
		flags, cleanup, err := patchModules(ctx, opts, b)
		if err != nil {
			return &BuildError{Binary: b.Name, Step: "patch modules", Err: err}
		}
		defer cleanup()
		args = append(args, flags...)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, b.Package)...)
	cmd.Dir = filepath.Join(opts.RepoRoot, b.Module)
	cmd.Env = toolsModuleEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return &BuildError{Binary: b.Name, Step: "go build " + b.Package + " in " + b.Module, Err: err, Output: tail(out.String(), 30)}
	}
	if err := os.Rename(tmp, target); err != nil {
		return &BuildError{Binary: b.Name, Step: "install", Err: err}
	}
	if err := os.MkdirAll(filepath.Dir(stampPath), 0o755); err != nil {
		return &BuildError{Binary: b.Name, Step: "write stamp", Err: err}
	}
	if err := os.WriteFile(stampPath, []byte(stamp), 0o644); err != nil {
		return &BuildError{Binary: b.Name, Step: "write stamp", Err: err}
	}
	if opts.Out != nil {
		fmt.Fprintf(opts.Out, "built %s in %s\n", b.Name, time.Since(start).Round(time.Second))
	}
	return nil
}

// toolsModuleEnv is the environment of the go commands run in a tools
// module: that module alone, its dependencies fetched as go.sum pins them.
func toolsModuleEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
}

// patchModules prepares a build of b with its Overlay files in place: each
// module named there is copied from where the go command keeps it (which it
// does not let a build overlay) into a temporary directory, its files are
// replaced, and a copy of the tools module's go.mod replaces the module
// with that directory. It returns the go build flags that use the copy and
// a function that removes the temporary files.
func patchModules(ctx context.Context, opts BuildOptions, b Binary) (flags []string, cleanup func(), err error) {
	work, err := os.MkdirTemp("", b.Name+"-build-")
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { _ = os.RemoveAll(work) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	toolsDir := filepath.Join(opts.RepoRoot, b.Module)
	gomod, err := os.ReadFile(filepath.Join(toolsDir, "go.mod"))
	if err != nil {
		return nil, nil, err
	}
	copied := map[string]string{}
	for _, o := range b.Overlay {
		dir, ok := copied[o.Module]
		if !ok {
			if dir, err = copyModule(ctx, toolsDir, o.Module, filepath.Join(work, "mod", strings.ReplaceAll(o.Module, "/", "_"))); err != nil {
				return nil, nil, err
			}
			copied[o.Module] = dir
			gomod = fmt.Appendf(gomod, "\nreplace %s => %s\n", o.Module, dir)
		}
		if err := copyFile(filepath.Join(opts.RepoRoot, o.With), filepath.Join(dir, o.File)); err != nil {
			return nil, nil, fmt.Errorf("putting %s in place of %s/%s: %w", o.With, o.Module, o.File, err)
		}
	}
	if err := copyFile(filepath.Join(toolsDir, "go.sum"), filepath.Join(work, "build.sum")); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(work, "build.mod"), gomod, 0o644); err != nil {
		return nil, nil, err
	}
	return []string{"-modfile", filepath.Join(work, "build.mod")}, cleanup, nil
}

// copyModule copies the module the tools module in toolsDir requires into
// dst (writable, unlike the module cache) and returns dst.
func copyModule(ctx context.Context, toolsDir, module, dst string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = toolsDir
	cmd.Env = toolsModuleEnv()
	data, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating module %s: %w", module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(data, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("locating module %s: no directory in %q", module, data)
	}
	err = filepath.WalkDir(mod.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(mod.Dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
	if err != nil {
		return "", fmt.Errorf("copying module %s: %w", module, err)
	}
	return dst, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// binaryStamp identifies the exact inputs of a build.
func binaryStamp(repoRoot string, b Binary) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, b.Module, f))
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	fmt.Fprintf(h, "%s\n%s\n", b.Package, b.LDFlags)
	for _, o := range b.Overlay {
		data, err := os.ReadFile(filepath.Join(repoRoot, o.With))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s/%s\n", o.Module, o.File)
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FindRepoRoot walks up from dir to the directory holding hack/tools, which is
// where the pinned control-plane sources are.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "tools", "kube", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no CAFE source tree (hack/tools/kube/go.mod) above the current directory")
		}
		dir = parent
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
