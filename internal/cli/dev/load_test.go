package dev

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// runLoad runs `cafe dev load args…` and returns its output.
func runLoad(t *testing.T, args ...string) (string, error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmd := newLoadCmd(streams)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String() + errOut.String(), err
}

func TestLoadPrintsEverySecondAndASummary(t *testing.T) {
	g := NewWithT(t)
	var host, tenant atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		tenant.Store(r.Header.Get("X-Tenant"))
		w.Header().Set("X-Cafe-Version", "v1")
		w.Header().Set("X-Cafe-Pod", "web-1")
	}))
	defer srv.Close()

	out, err := runLoad(t, "--url", srv.URL+"/pay", "--host", "shop.example", "--header", "X-Tenant=a=b",
		"--rate", "20", "--duration", "2s", "--fail-on-error")
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(out, "\n")
	g.Expect(strings.Fields(lines[0])).To(Equal([]string{"SECOND", "SENT", "OK", "NON-2XX", "CONN-ERRORS", "TIMEOUTS", "DROPPED", "P99", "VERSIONS"}))
	for i, second := range []string{"0", "1"} {
		f := strings.Fields(lines[1+i])
		g.Expect(f).To(HaveLen(9), lines[1+i])
		g.Expect(f[:7]).To(Equal([]string{second, "20", "20", "0", "0", "0", "0"}))
		g.Expect(f[8]).To(Equal("v1=20"))
	}
	g.Expect(out).To(MatchRegexp(`(?m)^SECONDS +SENT +OK +NON-2XX +CONN-ERRORS +TIMEOUTS +DROPPED +P50 +P90 +P99 +MAX\n2 +40 +40 +0 +0 +0 +0 `))
	g.Expect(out).To(ContainSubstring("versions (2xx): v1=40\n"))
	g.Expect(out).To(ContainSubstring("every second served (2 of 2)\n"))
	g.Expect(host.Load()).To(Equal("shop.example"))
	g.Expect(tenant.Load()).To(Equal("a=b"))
}

func TestLoadFailsOnErrorWhenAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cafe-Version", "v3-fail")
		w.Header().Set("X-Cafe-Pod", "web-3")
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()

	t.Run("with --fail-on-error the failures are an error", func(t *testing.T) {
		g := NewWithT(t)
		out, err := runLoad(t, "--url", srv.URL, "--rate", "10", "--duration", "1s", "--fail-on-error")
		g.Expect(err).To(MatchError("10 of 10 requests failed"))
		g.Expect(out).To(ContainSubstring("seconds not served (1 of 1): 0\n"))
		g.Expect(out).To(MatchRegexp(`(?m)^10 +0 +HTTP 500 from pod "web-3" version "v3-fail"$`))
	})
	t.Run("without it they are only reported", func(t *testing.T) {
		g := NewWithT(t)
		out, err := runLoad(t, "--url", srv.URL, "--rate", "10", "--duration", "1s")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(ContainSubstring("seconds not served (1 of 1): 0\n"))
	})
}

func TestLoadRefusesBadFlagsBeforeSending(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a non-loopback URL", []string{"--url", "http://10.1.2.3/"}, `host "10.1.2.3" is not loopback`},
		{"a public name", []string{"--url", "http://example.com/"}, `host "example.com" is not loopback`},
		{"no URL", nil, `required flag(s) "url" not set`},
		{"a header without value", []string{"--url", "http://127.0.0.1/", "--header", "X-A"}, `--header "X-A": want name=value`},
		{"a Host header", []string{"--url", "http://127.0.0.1/", "--header", "host=x"}, "set the Host header with --host"},
		{"a rate too high", []string{"--url", "http://127.0.0.1/", "--rate", "6000"}, "Rate 6000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			out, err := runLoad(t, tt.args...)
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(out).To(BeEmpty())
		})
	}
}
