package artifact

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

var sampleTree = map[string]file{
	"bin/app":        {"#!/bin/sh\necho hi\n", 0o755},
	"VERSION":        {"v1\n", 0o644},
	"conf/app.yaml":  {"port: 8080\n", 0o640},
	"conf/a.d/x.txt": {"x", 0o600},
	"z":              {"", 0o644},
}

// headers lists the headers of a gzip'd tar, in order.
func headers(t *testing.T, archive string) []*tar.Header {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []*tar.Header
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	g := NewWithT(t)
	src := writeTree(t, sampleTree)
	out := t.TempDir()

	first, err := Build(src, filepath.Join(out, "first.tar.gz"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first).To(Equal(sha256File(t, filepath.Join(out, "first.tar.gz"))), "the returned sha256 is the file's")

	// Another time, other mtimes: the same bytes.
	later := time.Now().Add(time.Hour)
	g.Expect(os.Chtimes(filepath.Join(src, "VERSION"), later, later)).To(Succeed())
	g.Expect(os.Chtimes(filepath.Join(src, "conf"), later, later)).To(Succeed())
	second, err := Build(src, filepath.Join(out, "second.tar.gz"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).To(Equal(first))

	// Another content: another sha256.
	g.Expect(os.WriteFile(filepath.Join(src, "VERSION"), []byte("v2\n"), 0o644)).To(Succeed())
	third, err := Build(src, filepath.Join(out, "third.tar.gz"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(third).NotTo(Equal(first))

	g.Expect(dirNames(t, out)).To(ConsistOf("first.tar.gz", "second.tar.gz", "third.tar.gz"), "no temporary file left")
}

func TestBuildWritesSortedNormalizedEntries(t *testing.T) {
	g := NewWithT(t)
	src := writeTree(t, sampleTree)
	archive := filepath.Join(t.TempDir(), "p.tar.gz")
	_, err := Build(src, archive)
	g.Expect(err).NotTo(HaveOccurred())

	var names []string
	modes := map[string]int64{}
	for _, hdr := range headers(t, archive) {
		names = append(names, hdr.Name)
		modes[hdr.Name] = hdr.Mode
		g.Expect(hdr.ModTime.Unix()).To(BeZero(), hdr.Name)
		g.Expect(hdr.Uid).To(BeZero(), hdr.Name)
		g.Expect(hdr.Gid).To(BeZero(), hdr.Name)
		g.Expect(hdr.Uname+hdr.Gname).To(BeEmpty(), hdr.Name)
	}
	g.Expect(names).To(Equal([]string{"VERSION", "bin/", "bin/app", "conf/", "conf/a.d/", "conf/a.d/x.txt", "conf/app.yaml", "z"}))
	g.Expect(modes).To(HaveKeyWithValue("bin/app", int64(0o755)))
	g.Expect(modes).To(HaveKeyWithValue("conf/app.yaml", int64(0o640)))
}

func TestBuildRefusesSymlinks(t *testing.T) {
	g := NewWithT(t)
	src := writeTree(t, sampleTree)
	link := filepath.Join(src, "conf", "passwd")
	g.Expect(os.Symlink("/etc/passwd", link)).To(Succeed())
	out := t.TempDir()

	_, err := Build(src, filepath.Join(out, "p.tar.gz"))
	g.Expect(err).To(MatchError(ContainSubstring(link + " is a symlink")))
	g.Expect(dirNames(t, out)).To(BeEmpty(), "no package, no temporary file")
}

func TestBuildRefusesAnOutputInsideItsSource(t *testing.T) {
	g := NewWithT(t)
	src := writeTree(t, sampleTree)
	_, err := Build(src, filepath.Join(src, "conf", "p.tar.gz"))
	g.Expect(err).To(MatchError(ContainSubstring("inside its source")))
	g.Expect(filepath.Join(src, "conf", "p.tar.gz")).NotTo(BeAnExistingFile())
}
