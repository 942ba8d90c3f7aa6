package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// insecureTLS is for the health endpoints of kube-controller-manager and
// kube-scheduler, which serve self-signed certificates on loopback.
var insecureTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback health probe of our own child

// pollInterval is how often readiness is re-checked; it bounds start-up
// latency, not correctness.
const pollInterval = 100 * time.Millisecond

// HTTPProbe says what a server's readiness looks like on the wire.
type HTTPProbe struct {
	// URL is polled with GET.
	URL string
	// TLS configures https URLs (nil: the defaults).
	TLS *tls.Config
	// AnyAnswer counts any HTTP answer as ready (a server that completes a
	// TLS handshake and answers at all), not only 200 OK.
	AnyAnswer bool
	// Stopped, when set, is asked before every poll and ends the wait with
	// its error: the server's process has exited, so it never will answer.
	Stopped func() error
}

// WaitHTTP polls the probe's URL until it answers as ready, the server
// stops, or ctx ends; the error then names the last answer or failure.
func WaitHTTP(ctx context.Context, p HTTPProbe) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: p.TLS}}
	defer client.CloseIdleConnections()
	var last error
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if p.Stopped != nil {
			if err := p.Stopped(); err != nil {
				return false, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			return false, nil
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && !p.AnyAnswer {
			last = fmt.Errorf("%s answered %s", p.URL, resp.Status)
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, tlsConfig *tls.Config) error {
	return WaitHTTP(ctx, HTTPProbe{URL: url, TLS: tlsConfig})
}

// waitAPIServerReady polls /readyz, which turns OK only once the API server's
// post-start hooks (RBAC bootstrap, priority classes, …) have run.
func waitAPIServerReady(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	var last error
	err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = fmt.Errorf("%v: %s", err, body)
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}
