package artifact

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
)

// storeWith builds a package of sampleTree into a store's directory,
// serves the store on loopback and returns the package's URL and sha256.
func storeWith(t *testing.T) (url, sum string) {
	t.Helper()
	storeDir := t.TempDir()
	sum, err := Build(writeTree(t, sampleTree), filepath.Join(storeDir, "app-v1.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	srv := loopbackServer(t, (&Store{Dir: storeDir}).Handler())
	return srv.URL + "/app-v1.tar.gz", sum
}

func TestFetchAndUnpackRoundTrip(t *testing.T) {
	g := NewWithT(t)
	url, sum := storeWith(t)
	host := t.TempDir()
	pkg := filepath.Join(host, "packages", "app-v1.tar.gz")
	g.Expect(os.Mkdir(filepath.Dir(pkg), 0o755)).To(Succeed())

	g.Expect(Fetch(t.Context(), nil, url, strings.ToUpper(sum), pkg)).To(Succeed())
	g.Expect(sha256File(t, pkg)).To(Equal(sum))
	dest := filepath.Join(host, "instances", "web-1")
	g.Expect(Unpack(pkg, dest)).To(Succeed())

	for name, f := range sampleTree {
		p := filepath.Join(dest, filepath.FromSlash(name))
		g.Expect(os.ReadFile(p)).To(Equal([]byte(f.content)), name)
		fi, err := os.Stat(p)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(fi.Mode()).To(Equal(f.mode), name)
	}
	g.Expect(dirNames(t, filepath.Dir(pkg))).To(ConsistOf("app-v1.tar.gz"), "no temporary file left")
}

func TestFetchRefusesAChecksumMismatch(t *testing.T) {
	g := NewWithT(t)
	url, sum := storeWith(t)
	other := strings.Repeat("0", 64)
	out := filepath.Join(t.TempDir(), "app.tar.gz")

	err := Fetch(t.Context(), nil, url, other, out)
	g.Expect(IsChecksumMismatch(err)).To(BeTrue(), "%v", err)
	var mismatch *ChecksumMismatchError
	g.Expect(err).To(BeAssignableToTypeOf(mismatch))
	g.Expect(err).To(Equal(&ChecksumMismatchError{URL: url, Want: other, Got: sum}))
	g.Expect(err.Error()).To(Equal("package " + url + ": sha256 is " + sum + ", the revision says " + other))
	g.Expect(dirNames(t, filepath.Dir(out))).To(BeEmpty(), "neither the package nor a temporary file")
}

func TestIsChecksumMismatchSeesThroughWrapping(t *testing.T) {
	g := NewWithT(t)
	err := &ChecksumMismatchError{URL: "u", Want: "a", Got: "b"}
	g.Expect(IsChecksumMismatch(wrap(err))).To(BeTrue())
	g.Expect(IsChecksumMismatch(os.ErrNotExist)).To(BeFalse())
	g.Expect(IsChecksumMismatch(nil)).To(BeFalse())
}

func TestFetchFailsOnErrors(t *testing.T) {
	g := NewWithT(t)
	url, sum := storeWith(t)
	var requests atomic.Int64
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/broken":
			http.Error(w, "disk on fire", http.StatusInternalServerError)
		case "/huge":
			w.Header().Set("Content-Length", strconv.Itoa(MaxPackageBytes+1))
			w.WriteHeader(http.StatusOK) // no body: the length alone is refused
		}
	}))
	for _, tc := range []struct {
		name, url, sha, want string
		requested            bool
	}{
		{"a missing package", strings.TrimSuffix(url, "v1.tar.gz") + "v9.tar.gz", sum, "404 Not Found", true},
		{"a server error", srv.URL + "/broken", sum, "500 Internal Server Error", true},
		{"a package too large", srv.URL + "/huge", sum, "more than the 536870912 bytes", true},
		{"a file URL", "file:///etc/passwd", sum, `scheme "file" is not http or https`, false},
		{"an ftp URL", "ftp://127.0.0.1/app.tar.gz", sum, `scheme "ftp" is not http or https`, false},
		{"a malformed sha256", srv.URL + "/broken", "abc", `sha256 "abc" is not 64 hex digits`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			before := requests.Load()
			out := filepath.Join(t.TempDir(), "app.tar.gz")
			err := Fetch(context.Background(), nil, tc.url, tc.sha, out)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
			g.Expect(err).To(MatchError(ContainSubstring(tc.url)), "the error names the URL")
			g.Expect(IsChecksumMismatch(err)).To(BeFalse())
			g.Expect(dirNames(t, filepath.Dir(out))).To(BeEmpty())
			if !tc.requested {
				g.Expect(requests.Load()).To(Equal(before), "refused before any request")
			}
		})
	}
	g.Expect(requests.Load()).To(BeNumerically(">=", 2))
}

func TestFetchStopsWithItsContext(t *testing.T) {
	g := NewWithT(t)
	url, sum := storeWith(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "app.tar.gz")
	g.Expect(Fetch(ctx, nil, url, sum, out)).To(MatchError(context.Canceled))
	g.Expect(out).NotTo(BeAnExistingFile())
}
