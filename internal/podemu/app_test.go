package podemu

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func appEndpoint(image string) Endpoint {
	return Endpoint{Namespace: "shop", Pod: "web-0", UID: "u1", Container: "app", Image: image, Address: netip.MustParseAddrPort("198.19.64.2:8080")}
}

func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestAppAnswersWithItsPodAndVersion(t *testing.T) {
	for _, tc := range []struct {
		name, image, path string
		status            int
		errorSet          bool
	}{
		{"a healthy image answers 200 on any path", "example.com/demo:v2", "/any/path", http.StatusOK, false},
		{"a failing image answers 500", "example.com/demo:v2-fail", "/", http.StatusInternalServerError, true},
		{"a slow image answers 200", "example.com/demo:v2-slow", "/", http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ep := appEndpoint(tc.image)
			rec := serve(appHandler(ep, time.Millisecond, &atomic.Int64{}), tc.path)
			g.Expect(rec.Code).To(Equal(tc.status))
			version, _ := ParseImage(tc.image)
			g.Expect(rec.Header().Get(PodHeader)).To(Equal("web-0"))
			g.Expect(rec.Header().Get(VersionHeader)).To(Equal(version))
			var a Answer
			g.Expect(json.Unmarshal(rec.Body.Bytes(), &a)).To(Succeed())
			g.Expect(a.Error != "").To(Equal(tc.errorSet))
			a.Error = ""
			g.Expect(a).To(Equal(Answer{Pod: "web-0", Namespace: "shop", Container: "app", Image: tc.image, Version: version}))
		})
	}
}

// /healthz says the process is up: 200 at once, whatever the image.
func TestHealthzIgnoresTheImageBehaviour(t *testing.T) {
	for _, image := range []string{"demo:v1", "demo:v1-fail", "demo:v1-slow"} {
		t.Run(image, func(t *testing.T) {
			g := NewWithT(t)
			start := time.Now()
			rec := serve(appHandler(appEndpoint(image), time.Hour, &atomic.Int64{}), "/healthz")
			g.Expect(time.Since(start)).To(BeNumerically("<", time.Minute))
			g.Expect(rec.Code).To(Equal(http.StatusOK))
			g.Expect(rec.Body.String()).To(Equal("ok"))
			g.Expect(rec.Header().Get(VersionHeader)).To(Equal("v1" + image[len("demo:v1"):]))
		})
	}
}
