package artifact

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Package is a built package.
type Package struct {
	// Name and Version are the app's; Version is also the package's
	// VERSION file.
	Name, Version string
	// File is the package's file name in the directory it was built
	// into: also its path under a Store serving that directory.
	File string
	// SHA256 is the hex SHA-256 of File, what a revision records.
	SHA256 string
}

// DemoApp is the name of the demo app (examples/demo-app) and of its
// executable in its packages (bin/demo-app).
const DemoApp = "demo-app"

// demoVersions are the versions BuildDemoPackages builds, in order: two
// healthy ones to release from one to the other, and one whose every
// answer fails, to release and roll back.
var demoVersions = []string{"v1", "v2", "v3-fail"}

// BuildDemoPackages builds the demo app's packages into outDir (created
// if missing): demo-app-v1.tar.gz, demo-app-v2.tar.gz and
// demo-app-v3-fail.tar.gz, each of bin/demo-app (a copy of demoBinary,
// mode 0755) and VERSION (the version, which the app reports). They are
// returned in that order.
func BuildDemoPackages(demoBinary, outDir string) ([]Package, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("demo packages: %w", err)
	}
	pkgs := make([]Package, 0, len(demoVersions))
	for _, v := range demoVersions {
		p, err := buildDemoPackage(demoBinary, outDir, v)
		if err != nil {
			return nil, fmt.Errorf("demo package %s: %w", v, err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// buildDemoPackage lays out the package of version in a temporary
// directory and builds it into outDir.
func buildDemoPackage(demoBinary, outDir, version string) (Package, error) {
	src, err := os.MkdirTemp("", "cafe-demo-package-")
	if err != nil {
		return Package{}, err
	}
	defer os.RemoveAll(src)
	// Explicit modes (Chmod, not the umask's narrowing of Mkdir's and
	// WriteFile's): they go into the archive, which must be reproducible.
	bin := filepath.Join(src, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return Package{}, err
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return Package{}, err
	}
	if err := copyFile(demoBinary, filepath.Join(bin, DemoApp), 0o755); err != nil {
		return Package{}, err
	}
	if err := writeFile(filepath.Join(src, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		return Package{}, err
	}
	file := DemoApp + "-" + version + ".tar.gz"
	sum, err := Build(src, filepath.Join(outDir, file))
	if err != nil {
		return Package{}, err
	}
	return Package{Name: DemoApp, Version: version, File: file, SHA256: sum}, nil
}

// copyFile copies src to a new file dst with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// writeFile writes a new file with exactly mode.
func writeFile(name string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(name, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(name, mode)
}
