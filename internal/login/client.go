package login

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ErrDenied: the service refused the credentials (wrong password, disabled
// account, expired or revoked refresh credential).
var ErrDenied = errors.New("the login service refused the credentials")

// Client talks to the login service over verified TLS.
type Client struct {
	// Server is the service's https base URL.
	Server  string
	RootCAs *x509.CertPool
}

// Login sends the user's password once and returns the credentials.
func (c Client) Login(ctx context.Context, user, password string) (Response, error) {
	return c.post(ctx, LoginPath, Request{User: user, Password: password})
}

// Refresh renews the Kubernetes credential with a refresh credential.
func (c Client) Refresh(ctx context.Context, refreshToken string) (Response, error) {
	return c.post(ctx, RefreshPath, Request{RefreshToken: refreshToken})
}

func (c Client) post(ctx context.Context, path string, req Request) (Response, error) {
	if !strings.HasPrefix(c.Server, "https://") {
		return Response{}, fmt.Errorf("login server %q: only https (a password never travels in clear)", c.Server)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Do(hreq)
	if err != nil {
		return Response{}, fmt.Errorf("reaching the login service: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var out Response
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return Response{}, fmt.Errorf("reading the login service's answer: %w", err)
		}
		return out, nil
	case http.StatusUnauthorized:
		return Response{}, ErrDenied
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return Response{}, fmt.Errorf("the login service answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
}
