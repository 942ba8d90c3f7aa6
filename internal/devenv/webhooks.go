package devenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/config"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/install"
)

// InstallWebhooks applies config/webhook's configurations with each
// webhook's service reference replaced by a URL on the in-process server:
// locally the manager runs on the host, not behind a Service.
func InstallWebhooks(ctx context.Context, admin *rest.Config, baseURL string) error {
	objs, err := config.Webhooks()
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if err := pointWebhooksAt(obj, baseURL); err != nil {
			return err
		}
	}
	c, err := client.New(admin, client.Options{})
	if err != nil {
		return err
	}
	return install.Apply(ctx, c, objs)
}

func pointWebhooksAt(obj *unstructured.Unstructured, baseURL string) error {
	hooks, _, err := unstructured.NestedSlice(obj.Object, "webhooks")
	if err != nil {
		return fmt.Errorf("%s: %w", obj.GetName(), err)
	}
	for i, h := range hooks {
		hook := h.(map[string]any)
		path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
		hook["clientConfig"] = map[string]any{"url": baseURL + path}
		hooks[i] = hook
	}
	return unstructured.SetNestedSlice(obj.Object, hooks, "webhooks")
}

// WaitWebhookServer polls the webhook server until it completes a TLS
// handshake and answers, or fails if the manager stops first.
func WaitWebhookServer(ctx context.Context, baseURL string, managerDone <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := controlplane.WaitHTTP(ctx, controlplane.HTTPProbe{
		URL:       baseURL + "/healthz",
		TLS:       &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe of our own loopback server
		AnyAnswer: true,
		Stopped: func() error {
			select {
			case <-managerDone:
				return errors.New("the CAFE manager stopped before its webhook server was up")
			default:
				return nil
			}
		},
	})
	if err != nil {
		return fmt.Errorf("waiting for the webhook server at %s: %w", baseURL, err)
	}
	return nil
}
