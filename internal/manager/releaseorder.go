package manager

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/releaseorder"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/seal"
	rowebhook "github.com/cafe-io/cafe/internal/webhook/releaseorder"
)

func (o Options) namespace() string {
	if o.Namespace == "" {
		return install.Namespace
	}
	return o.Namespace
}

// setupReleaseOrders registers the ReleaseOrder controller; its audit
// signing key lives in CAFE's namespace.
func setupReleaseOrders(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	keys, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	ro := &releaseorder.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), KeyClient: keys, Recorder: mgr.GetEventRecorder("releaseorder"),
		Namespace: opts.namespace(), Retention: opts.ReleaseOrderRetention, IdleTimeout: opts.ReleaseOrderIdleTimeout,
		Seals: &seal.Loader{Client: keys, Namespace: opts.namespace()}, Approval: opts.Approval}
	if err := ro.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the ReleaseOrder controller: %w", err)
	}
	return nil
}

// registerReleaseOrderWebhooks serves the ReleaseOrder and ReleaseAction
// webhooks; keys reads the identity seal key in namespace uncached.
func registerReleaseOrderWebhooks(srv webhook.Server, mgr ctrl.Manager, keys client.Client, namespace string, approval cafev1alpha1.ApprovalPolicy) {
	seals := &seal.Loader{Client: keys, Namespace: namespace}
	srv.Register(rowebhook.MutatePath, &webhook.Admission{Handler: &rowebhook.Stamper{Seals: seals, Clock: &seal.Clock{}}})
	srv.Register(rowebhook.ValidateOrderPath, &webhook.Admission{Handler: rowebhook.OrderValidator{Reader: mgr.GetAPIReader(), Client: mgr.GetClient()}})
	srv.Register(rowebhook.ValidateActionPath, &webhook.Admission{Handler: rowebhook.ActionValidator{Reader: mgr.GetAPIReader(), Client: mgr.GetClient(), Approval: approval}})
}
