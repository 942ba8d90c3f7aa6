package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

func TestUnpackKeepsModes(t *testing.T) {
	g := NewWithT(t)
	archive := writeTar(t,
		dirEntry("bin/", 0o755),
		reg("bin/app", "#!/bin/sh\n", 0o755),
		reg("conf/secret", "s", 0o600), // its directory is implicit
		reg("setuid", "x", 0o4755),     // the setuid bit is dropped
		dirEntry("ro/", 0o555),
		reg("ro/file", "r", 0o444), // written before its directory becomes read-only
	)
	dest := filepath.Join(t.TempDir(), "instances", "web-1")
	g.Expect(Unpack(archive, dest)).To(Succeed())
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dest, "ro"), 0o755) }) // for t.TempDir's removal as non-root

	for name, want := range map[string]os.FileMode{
		".":           os.ModeDir | 0o755,
		"bin":         os.ModeDir | 0o755,
		"bin/app":     0o755,
		"conf":        os.ModeDir | 0o755,
		"conf/secret": 0o600,
		"setuid":      0o755,
		"ro":          os.ModeDir | 0o555,
		"ro/file":     0o444,
	} {
		fi, err := os.Stat(filepath.Join(dest, name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(fi.Mode()).To(Equal(want), name)
	}
	g.Expect(os.ReadFile(filepath.Join(dest, "bin", "app"))).To(Equal([]byte("#!/bin/sh\n")))
	g.Expect(dirNames(t, filepath.Dir(dest))).To(ConsistOf("web-1"), "no temporary directory left")
}

func TestUnpackRefusesMaliciousEntries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry tarEntry
		want  string
	}{
		{"a parent path", reg("../x", "evil", 0o644), `entry "../x": the path leaves`},
		{"a parent path after a directory", reg("bin/../../x", "evil", 0o644), `entry "bin/../../x": the path leaves`},
		{"an absolute path", reg("/tmp/cafe-evil", "evil", 0o644), `entry "/tmp/cafe-evil": an absolute path`},
		{"a symlink", tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "/bin/sh"}}, `entry "bin/sh": a symlink`},
		{"a hard link", tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "passwd", Linkname: "/etc/passwd"}}, `entry "passwd": a hard link`},
		{"a character device", tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}}, `entry "null": a device`},
		{"a named pipe", tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "pipe"}}, `entry "pipe": a device or named pipe`},
		{"a file named twice", reg("VERSION", "v2", 0o644), `entry "VERSION": named twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			// A good entry first: the unpack has begun when it fails.
			archive := writeTar(t, reg("VERSION", "v1", 0o644), tc.entry)
			parent := t.TempDir()
			err := Unpack(archive, filepath.Join(parent, "web-1"))
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			g.Expect(dirNames(t, parent)).To(BeEmpty(), "nothing left behind")
			g.Expect(filepath.Join(filepath.Dir(parent), "x")).NotTo(BeAnExistingFile())
		})
	}
}

// A header may claim any size; the bound holds before anything is read.
func TestUnpackBoundsTheSize(t *testing.T) {
	g := NewWithT(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	g.Expect(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Mode: 0o644, Size: MaxPackageBytes + 1})).To(Succeed())
	g.Expect(zw.Close()).To(Succeed()) // no content: the header is enough
	archive := filepath.Join(t.TempDir(), "huge.tar.gz")
	g.Expect(os.WriteFile(archive, buf.Bytes(), 0o644)).To(Succeed())

	parent := t.TempDir()
	g.Expect(Unpack(archive, filepath.Join(parent, "web-1"))).To(MatchError(ContainSubstring(`entry "huge": the package unpacks to more than`)))
	g.Expect(dirNames(t, parent)).To(BeEmpty())
}

func TestUnpackRefusesAnExistingDestination(t *testing.T) {
	g := NewWithT(t)
	archive := writeTar(t, reg("VERSION", "v1", 0o644))
	dest := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(dest, "keep"), []byte("mine"), 0o644)).To(Succeed())
	g.Expect(Unpack(archive, dest)).To(MatchError(ContainSubstring("exists already")))
	g.Expect(dirNames(t, dest)).To(ConsistOf("keep"))
}

func TestUnpackRefusesACorruptArchive(t *testing.T) {
	g := NewWithT(t)
	good, err := os.ReadFile(writeTar(t, reg("VERSION", "v1", 0o644), reg("bin/app", "app", 0o755)))
	g.Expect(err).NotTo(HaveOccurred())
	archive := filepath.Join(t.TempDir(), "truncated.tar.gz")
	g.Expect(os.WriteFile(archive, good[:len(good)-6], 0o644)).To(Succeed()) // part of the gzip trailer (CRC) gone

	parent := t.TempDir()
	g.Expect(Unpack(archive, filepath.Join(parent, "web-1"))).To(HaveOccurred())
	g.Expect(dirNames(t, parent)).To(BeEmpty())
}

// An unpack's temporary directory names what it becomes; nothing else
// beside it does.
func TestUnpackingIntoNamesTheDirectoryAnUnpackBecomes(t *testing.T) {
	for name, want := range map[string]string{
		".e03dfe53.unpack-1953176024": "e03dfe53",
		".e03dfe53.unpack-":           "e03dfe53",
		"e03dfe53":                    "",
		"e03dfe53.unpack-1":           "",
		".unpack-1":                   "",
		"..unpack-1":                  "",
		".e03dfe53":                   "",
		"e03dfe53.tar.gz":             "",
	} {
		got, ok := UnpackingInto(name)
		if got != want || ok != (want != "") {
			t.Errorf("UnpackingInto(%q) = %q, %v; want %q, %v", name, got, ok, want, want != "")
		}
	}
}
