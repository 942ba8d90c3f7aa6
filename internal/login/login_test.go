package login_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/directory/directorytest"
	"github.com/cafe-io/cafe/internal/login"
	"github.com/cafe-io/cafe/internal/token"
)

var bank = directory.Directory{
	Base: "dc=bank,dc=example",
	Users: []directory.User{
		{Name: "alice", Password: "alice-secret"},
		{Name: "bob", Password: "bob-secret"},
		{Name: "eve", Password: "eve-secret", Disabled: true},
	},
	Groups: []directory.Group{
		{Name: "app-dev", Members: []string{"alice", "eve"}},
		{Name: "release-approvers", Members: []string{"alice"}},
	},
}

type service struct {
	dir    *directorytest.Server
	access *token.Issuer
	url    string
}

func start(t *testing.T, g *WithT) *service {
	dir := directorytest.Start(t, bank)
	key, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	access := &token.Issuer{URL: "https://cafe.example", Audience: "cafe", Key: key}
	srv := httptest.NewServer((&login.Service{Directory: dir.Client, Access: access, Log: logr.Discard()}).Handler())
	t.Cleanup(srv.Close)
	return &service{dir: dir, access: access, url: srv.URL}
}

func (s *service) post(g Gomega, path string, req login.Request) (int, login.Response) {
	body, err := json.Marshal(req)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out login.Response
	if resp.StatusCode == http.StatusOK {
		g.Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
		g.Expect(resp.Header.Get("Cache-Control")).To(Equal("no-store"))
	}
	return resp.StatusCode, out
}

// Against a real slapd: a login gives a Kubernetes credential naming the
// user and the groups the directory gives; wrong passwords and a disabled
// account get 401; a refresh asks the directory again: a membership
// removed is gone from the next credential, a disabled account gets
// nothing; the two kinds of credential are not interchangeable.
func TestLoginAndRefreshAskTheDirectory(t *testing.T) {
	g := NewWithT(t)
	s := start(t, g)
	ctx := context.Background()

	code, resp := s.post(g, login.LoginPath, login.Request{User: "alice", Password: "alice-secret"})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(resp.Groups).To(Equal([]string{"app-dev", "release-approvers"}))
	claims, err := s.access.Verify(resp.Token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(claims.Subject).To(Equal("alice"))
	g.Expect(claims.Groups).To(Equal([]string{"app-dev", "release-approvers"}))
	g.Expect(resp.Expiry).To(BeTemporally("~", time.Now().Add(token.DefaultLifetime), 5*time.Second))
	g.Expect(resp.RefreshExpiry).To(BeTemporally("~", time.Now().Add(login.DefaultRefreshLifetime), 5*time.Second))

	for _, bad := range []login.Request{{User: "alice", Password: "wrong"}, {User: "eve", Password: "eve-secret"}, {User: "alice"}, {User: "nobody", Password: "x"}} {
		code, _ := s.post(g, login.LoginPath, bad)
		g.Expect(code).To(Equal(http.StatusUnauthorized), "%+v", bad)
	}
	code, _ = s.post(g, login.RefreshPath, login.Request{RefreshToken: resp.Token})
	g.Expect(code).To(Equal(http.StatusUnauthorized), "a Kubernetes credential is no refresh credential")
	_, err = s.access.Verify(resp.RefreshToken)
	g.Expect(err).To(MatchError(token.ErrClaims), "a refresh credential is no Kubernetes credential")

	g.Expect(s.dir.Admin.RemoveMember(ctx, "app-dev", "alice")).To(Succeed())
	code, refreshed := s.post(g, login.RefreshPath, login.Request{RefreshToken: resp.RefreshToken})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(refreshed.Groups).To(Equal([]string{"release-approvers"}), "the directory's groups now")
	g.Expect(refreshed.RefreshToken).To(Equal(resp.RefreshToken), "the working day does not grow")
	claims, err = s.access.Verify(refreshed.Token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(claims.Groups).To(Equal([]string{"release-approvers"}))

	g.Expect(s.dir.Admin.Disable(ctx, "alice")).To(Succeed())
	code, _ = s.post(g, login.RefreshPath, login.Request{RefreshToken: resp.RefreshToken})
	g.Expect(code).To(Equal(http.StatusUnauthorized), "a disabled account gets nothing more")
}

// The directory down: 503, never a credential on missing data.
func TestLoginWithTheDirectoryDownIsUnavailable(t *testing.T) {
	g := NewWithT(t)
	s := start(t, g)
	s.dir.Stop()
	code, _ := s.post(g, login.LoginPath, login.Request{User: "alice", Password: "alice-secret"})
	g.Expect(code).To(Equal(http.StatusServiceUnavailable))
}

// Guessing is throttled: after five wrong passwords for alice, even the
// right one gets 429 with Retry-After for the rest of the minute; bob, from
// the same address, still logs in.
func TestWrongPasswordsThrottleTheName(t *testing.T) {
	g := NewWithT(t)
	s := start(t, g)
	for range login.DefaultMaxFailuresPerUser {
		code, _ := s.post(g, login.LoginPath, login.Request{User: "alice", Password: "guess"})
		g.Expect(code).To(Equal(http.StatusUnauthorized))
	}
	body, err := json.Marshal(login.Request{User: "alice", Password: "alice-secret"})
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.Post(s.url+login.LoginPath, "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(retry).To(BeNumerically(">", 50))
	g.Expect(retry).To(BeNumerically("<=", 60))
	code, _ := s.post(g, login.LoginPath, login.Request{User: "bob", Password: "bob-secret"})
	g.Expect(code).To(Equal(http.StatusOK))
}
