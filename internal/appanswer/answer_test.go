package appanswer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func instance(version string, slow time.Duration) Instance {
	return Instance{Pod: "web-0", Namespace: "shop", Container: "app", Image: "example.com/demo:" + version,
		Version: version, Behaviour: BehaviourOf(version), SlowLatency: slow}
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestAnswersWithItsInstanceAndVersion(t *testing.T) {
	for _, tc := range []struct {
		name, version, path string
		status              int
		errorSet            bool
	}{
		{"a healthy instance answers 200 on any path", "v2", "/any/path", http.StatusOK, false},
		{"a failing instance answers 500", "v2-fail", "/", http.StatusInternalServerError, true},
		{"a slow instance answers 200", "v2-slow", "/", http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			in := instance(tc.version, time.Millisecond)
			rec := serve(Handler(in), httptest.NewRequest(http.MethodGet, tc.path, nil))
			g.Expect(rec.Code).To(Equal(tc.status))
			g.Expect(rec.Header().Get(PodHeader)).To(Equal("web-0"))
			g.Expect(rec.Header().Get(VersionHeader)).To(Equal(tc.version))
			g.Expect(rec.Header().Get("Content-Type")).To(Equal("application/json"))
			var a Answer
			g.Expect(json.Unmarshal(rec.Body.Bytes(), &a)).To(Succeed())
			g.Expect(a.Error != "").To(Equal(tc.errorSet))
			a.Error = ""
			g.Expect(a).To(Equal(Answer{Pod: "web-0", Namespace: "shop", Container: "app", Image: in.Image, Version: tc.version}))
		})
	}
}

// /healthz says the process is up: 200 at once, whatever the behaviour.
func TestHealthzIgnoresTheBehaviour(t *testing.T) {
	for _, version := range []string{"v1", "v1-fail", "v1-slow"} {
		t.Run(version, func(t *testing.T) {
			g := NewWithT(t)
			start := time.Now()
			rec := serve(Handler(instance(version, time.Hour)), httptest.NewRequest(http.MethodGet, HealthPath, nil))
			g.Expect(time.Since(start)).To(BeNumerically("<", time.Minute))
			g.Expect(rec.Code).To(Equal(http.StatusOK))
			g.Expect(rec.Body.String()).To(Equal("ok"))
			g.Expect(rec.Header().Get(VersionHeader)).To(Equal(version))
		})
	}
}

// A slow instance waits its latency, and stops waiting when the client
// goes away (nothing is written then).
func TestSlowWaitsUnlessTheClientLeaves(t *testing.T) {
	g := NewWithT(t)
	start := time.Now()
	rec := serve(Handler(instance("v1-slow", 50*time.Millisecond)), httptest.NewRequest(http.MethodGet, "/", nil))
	g.Expect(time.Since(start)).To(BeNumerically(">=", 50*time.Millisecond))
	g.Expect(rec.Code).To(Equal(http.StatusOK))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	rec = serve(Handler(instance("v1-slow", time.Hour)), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	g.Expect(time.Since(start)).To(BeNumerically("<", time.Minute))
	g.Expect(rec.Body.Len()).To(BeZero())
}
