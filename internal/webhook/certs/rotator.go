package certs

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// DefaultInterval is how often a [Rotator] runs [Ensure] when its Interval is zero.
const DefaultInterval = time.Hour

// Delays between retries of a failed [Ensure]: doubled on each failure from
// the first, up to the last (or the interval, if shorter).
const (
	firstRetryDelay = time.Second
	maxRetryDelay   = 5 * time.Minute
)

// Rotator runs [Ensure] when the manager starts and then every Interval, so
// certificates are renewed and caBundles restored while CAFE runs. It runs on
// every replica, leader or not: each serves webhooks from its own files.
type Rotator struct {
	// Client should read from the API server, not from a cache (see the
	// package documentation).
	Client  client.Client
	Options Options
	// Interval between passes; DefaultInterval if zero. The renewal window
	// must be much longer, so a certificate is renewed well before expiry.
	Interval time.Duration
}

var (
	_ manager.Runnable               = (*Rotator)(nil)
	_ manager.LeaderElectionRunnable = (*Rotator)(nil)
)

// NeedLeaderElection returns false: every replica needs the files.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start runs [Ensure] until ctx ends, logging failures through the context
// logger and retrying them with exponential backoff. It returns nil when ctx
// ends.
func (r *Rotator) Start(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	logger := log.FromContext(ctx).WithName("webhook-certs")
	ctx = log.IntoContext(ctx, logger)
	retryDelay := firstRetryDelay
	for {
		next := interval
		if err := Ensure(ctx, r.Client, r.Options); err != nil {
			logger.Error(err, "Failed to ensure webhook certificates, retrying",
				"Secret", klog.KRef(r.Options.Namespace, r.Options.SecretName), "after", retryDelay)
			next = retryDelay
			retryDelay = min(2*retryDelay, maxRetryDelay, interval)
		} else {
			retryDelay = firstRetryDelay
		}
		// Jitter spreads the replicas' passes so they rarely race.
		timer := time.NewTimer(wait.Jitter(next, 0.1))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}
