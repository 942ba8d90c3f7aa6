// Package httpcheck is the HTTP health check CAFE's parts share: a GET that
// wants a 2xx answer, sent straight to the address checked.
package httpcheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// NewClient is a client for health checks: each request goes straight to
// its address, never through a proxy from the environment (the address
// is the thing checked), on a fresh connection, within timeout.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// Get GETs url and wants a 2xx answer; the error names the URL.
func Get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
