package certs

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

func TestWriteCertFilesReplacesChangedFilesAndLeavesUnchangedOnesAlone(t *testing.T) {
	g := NewWithT(t)
	dir := filepath.Join(t.TempDir(), "serving-certs")

	wrote, err := writeCertFiles(dir, []byte("cert one"), []byte("key one"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeTrue())
	g.Expect(os.ReadFile(filepath.Join(dir, "tls.crt"))).To(Equal([]byte("cert one")))
	g.Expect(os.ReadFile(filepath.Join(dir, "tls.key"))).To(Equal([]byte("key one")))
	keyInfo, err := os.Stat(filepath.Join(dir, "tls.key"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(keyInfo.Mode().Perm()).To(Equal(os.FileMode(0o600)), "the key is private")
	certBefore, err := os.Stat(filepath.Join(dir, "tls.crt"))
	g.Expect(err).NotTo(HaveOccurred())

	wrote, err = writeCertFiles(dir, []byte("cert one"), []byte("key one"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeFalse())
	certAfter, err := os.Stat(filepath.Join(dir, "tls.crt"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.SameFile(certBefore, certAfter)).To(BeTrue(), "an unchanged file is not rewritten")

	wrote, err = writeCertFiles(dir, []byte("cert two"), []byte("key one"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrote).To(BeTrue())
	g.Expect(os.ReadFile(filepath.Join(dir, "tls.crt"))).To(Equal([]byte("cert two")))
	certAfter, err = os.Stat(filepath.Join(dir, "tls.crt"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.SameFile(certBefore, certAfter)).To(BeFalse(), "a changed file is replaced by a rename, not written in place")

	entries, err := os.ReadDir(dir)
	g.Expect(err).NotTo(HaveOccurred())
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	g.Expect(names).To(ConsistOf("tls.crt", "tls.key"), "no temporary file is left behind")
}
