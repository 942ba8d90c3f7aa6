package artifact

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestStoreServesItsFilesOnly(t *testing.T) {
	storeDir := writeTree(t, map[string]file{
		"app-v1.tar.gz":        {"package", 0o644},
		"team/app-v2.tar.gz":   {"package 2", 0o644},
		".app-v3.tar.gz.1.tmp": {"half written", 0o600},
	})
	outside := writeTree(t, map[string]file{"secret": {"s", 0o644}})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(storeDir, "link")); err != nil {
		t.Fatal(err)
	}
	h := (&Store{Dir: storeDir}).Handler()
	for _, tc := range []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"a package", http.MethodGet, "/app-v1.tar.gz", http.StatusOK, "package"},
		{"a package in a subdirectory", http.MethodGet, "/team/app-v2.tar.gz", http.StatusOK, "package 2"},
		{"HEAD has no body", http.MethodHead, "/app-v1.tar.gz", http.StatusOK, ""},
		{"a missing file", http.MethodGet, "/app-v9.tar.gz", http.StatusNotFound, ""},
		{"the root is not listed", http.MethodGet, "/", http.StatusNotFound, ""},
		{"a directory is not listed", http.MethodGet, "/team/", http.StatusNotFound, ""},
		{"a directory without slash neither", http.MethodGet, "/team", http.StatusNotFound, ""},
		{"a temporary file is no package yet", http.MethodGet, "/.app-v3.tar.gz.1.tmp", http.StatusNotFound, ""},
		{"a symlink out of the store", http.MethodGet, "/link", http.StatusNotFound, ""},
		{"a path climbing out", http.MethodGet, "/../" + filepath.Base(outside) + "/secret", http.StatusNotFound, ""},
		{"PUT", http.MethodPut, "/app-v1.tar.gz", http.StatusMethodNotAllowed, ""},
		{"POST", http.MethodPost, "/new.tar.gz", http.StatusMethodNotAllowed, ""},
		{"DELETE", http.MethodDelete, "/app-v1.tar.gz", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, "/", nil)
			req.URL.Path = tc.path // as sent, not cleaned by a client
			h.ServeHTTP(rec, req)
			g.Expect(rec.Code).To(Equal(tc.status))
			if tc.status == http.StatusOK {
				g.Expect(rec.Body.String()).To(Equal(tc.body))
				g.Expect(rec.Header().Get("Content-Length")).NotTo(BeEmpty())
			}
			if tc.status == http.StatusMethodNotAllowed {
				g.Expect(rec.Header().Get("Allow")).To(Equal("GET, HEAD"))
			}
			g.Expect(rec.Body.String()).NotTo(ContainSubstring("half written"))
		})
	}
	g := NewWithT(t)
	g.Expect(os.ReadFile(filepath.Join(storeDir, "app-v1.tar.gz"))).To(Equal([]byte("package")), "nothing was written")
}

func TestStoreServeStopsWithItsContext(t *testing.T) {
	g := NewWithT(t)
	storeDir := writeTree(t, map[string]file{"app-v1.tar.gz": {"package", 0o644}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- (&Store{Dir: storeDir}).Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/app-v1.tar.gz")
	g.Expect(err).NotTo(HaveOccurred())
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(string(body)).To(Equal("package"))

	cancel()
	g.Eventually(served).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	g.Expect(err).To(HaveOccurred(), "the listener is closed")
}

func TestStoreServeReportsAFailedListener(t *testing.T) {
	g := NewWithT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ln.Close()).To(Succeed())
	err = (&Store{Dir: t.TempDir()}).Serve(context.Background(), ln)
	g.Expect(err).To(MatchError(ContainSubstring("artifact store on " + ln.Addr().String())))
}
