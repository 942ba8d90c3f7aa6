// Package login is CAFE's login service: a directory user proves who they
// are with their password (checked by the directory, with a bind as the
// user) and gets a short-lived Kubernetes credential (package token)
// naming them and their directory groups, and a refresh credential; the
// refresh asks the directory again, so a disabled account gets nothing
// more and a changed membership is in the next credential. The password is
// used for that one bind and kept nowhere; nothing here writes to the
// cluster.
package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"

	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/token"
)

// Paths of the service.
const (
	LoginPath   = "/login"
	RefreshPath = "/login/refresh"
)

// DefaultRefreshLifetime is how long a refresh credential lasts: a working
// day, after which the user types their password again.
const DefaultRefreshLifetime = 10 * time.Hour

// Directory is what the service asks of the directory.
type Directory interface {
	Authenticate(ctx context.Context, user, password string) (directory.Identity, error)
	Lookup(ctx context.Context, user string) (directory.Identity, error)
}

// Service answers logins and refreshes.
type Service struct {
	Directory Directory
	// Access signs the Kubernetes credentials.
	Access *token.Issuer
	// RefreshLifetime; zero means DefaultRefreshLifetime.
	RefreshLifetime time.Duration
	// Throttle slows password guessing; nil means NewThrottle's defaults.
	Throttle *Throttle
	Log      logr.Logger
}

// Request is a login (User and Password) or a refresh (RefreshToken).
type Request struct {
	User         string `json:"user,omitempty"`
	Password     string `json:"password,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
}

// Response carries the credentials.
type Response struct {
	User   string   `json:"user"`
	Groups []string `json:"groups"`
	// Token is the Kubernetes bearer token, valid until Expiry.
	Token  string    `json:"token"`
	Expiry time.Time `json:"expiry"`
	// RefreshToken renews Token until RefreshExpiry.
	RefreshToken  string    `json:"refreshToken"`
	RefreshExpiry time.Time `json:"refreshExpiry"`
}

// refreshAudience keeps refresh credentials from being accepted as
// Kubernetes credentials, and the other way round.
func (s *Service) refresher() token.Issuer {
	r := *s.Access
	r.Audience = s.Access.Audience + "-refresh"
	r.Lifetime = s.RefreshLifetime
	if r.Lifetime == 0 {
		r.Lifetime = DefaultRefreshLifetime
	}
	return r
}

// Handler serves LoginPath and RefreshPath (POST, JSON).
func (s *Service) Handler() http.Handler {
	if s.Throttle == nil {
		s.Throttle = NewThrottle()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+LoginPath, s.serve(s.login))
	mux.HandleFunc("POST "+RefreshPath, s.serve(s.refresh))
	return mux
}

// errDenied answers 401 without saying why (a guesser learns nothing).
var errDenied = errors.New("invalid credentials")

// throttled answers 429: too many failed logins for the name or from the
// address.
type throttled struct{ retryAfter time.Duration }

func (t throttled) Error() string {
	return fmt.Sprintf("too many failed logins; try again in %s", t.retryAfter.Round(time.Second))
}

func (s *Service) serve(answer func(*http.Request, Request) (Response, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
			http.Error(w, "a JSON body with user and password, or refreshToken", http.StatusBadRequest)
			return
		}
		resp, err := answer(r, req)
		var slow throttled
		switch {
		case errors.As(err, &slow):
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(slow.retryAfter.Seconds()))))
			http.Error(w, slow.Error(), http.StatusTooManyRequests)
			return
		case errors.Is(err, errDenied):
			http.Error(w, errDenied.Error(), http.StatusUnauthorized)
			return
		case err != nil:
			s.Log.Error(err, "Login failed")
			http.Error(w, "the directory is unreachable; try again", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(resp)
	}
}

func (s *Service) login(r *http.Request, req Request) (Response, error) {
	addr := clientAddress(r)
	if wait := s.Throttle.RetryAfter(req.User, addr); wait > 0 {
		s.Log.Info("Login throttled", "user", req.User, "address", addr, "retryAfter", wait)
		return Response{}, throttled{retryAfter: wait}
	}
	id, err := s.Directory.Authenticate(r.Context(), req.User, req.Password)
	if errors.Is(err, directory.ErrInvalidCredentials) {
		s.Throttle.Failed(req.User, addr)
		s.Log.Info("Login refused", "user", req.User, "address", addr)
		return Response{}, errDenied
	}
	if err != nil {
		return Response{}, err
	}
	s.Throttle.Succeeded(req.User)
	resp, err := s.issue(id, "")
	if err == nil {
		s.Log.Info("Login", "user", id.Name, "groups", id.Groups, "expiry", resp.Expiry)
	}
	return resp, err
}

func (s *Service) refresh(r *http.Request, req Request) (Response, error) {
	ctx := r.Context()
	refresher := s.refresher()
	claims, err := refresher.Verify(req.RefreshToken)
	if err != nil {
		s.Log.Info("Refresh refused", "reason", err.Error())
		return Response{}, errDenied
	}
	id, err := s.Directory.Lookup(ctx, claims.Subject)
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		s.Log.Info("Refresh refused: the user is no longer in the directory", "user", claims.Subject)
		return Response{}, errDenied
	case err != nil:
		return Response{}, err
	case id.Disabled:
		s.Log.Info("Refresh refused: the account is disabled", "user", claims.Subject)
		return Response{}, errDenied
	}
	resp, err := s.issue(id, req.RefreshToken)
	if err == nil {
		resp.RefreshExpiry = time.Unix(claims.Expiry, 0).UTC()
		s.Log.Info("Refresh", "user", id.Name, "groups", id.Groups, "expiry", resp.Expiry)
	}
	return resp, err
}

// issue signs a Kubernetes credential for id, and a refresh credential
// unless one is given (a refresh keeps its own: the working day does not
// grow by refreshing).
func (s *Service) issue(id directory.Identity, refresh string) (Response, error) {
	access, c, err := s.Access.Issue(id.Name, id.Groups)
	if err != nil {
		return Response{}, err
	}
	resp := Response{User: id.Name, Groups: id.Groups, Token: access, Expiry: time.Unix(c.Expiry, 0).UTC(), RefreshToken: refresh}
	if refresh == "" {
		r, rc, err := s.refresher().Issue(id.Name, nil)
		if err != nil {
			return Response{}, err
		}
		resp.RefreshToken, resp.RefreshExpiry = r, time.Unix(rc.Expiry, 0).UTC()
	}
	if resp.Groups == nil {
		resp.Groups = []string{}
	}
	return resp, nil
}
