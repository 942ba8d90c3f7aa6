// Package release implements `cafe release` (release orders: create, the
// actions approve|reject|start|pause|resume|confirm|cancel|rollback, get,
// list, history, stats) and `cafe audit` (export and verify the signed
// audit trails of release orders).
//
// Every action is a ReleaseAction the command creates; CAFE's admission
// webhook records the authenticated user as its actor and checks RBAC and
// the order's phase, so the command sends no user name and its refusal
// messages are the server's.
package release

import (
	"context"
	"time"

	"github.com/cafe-io/cafe/internal/cli/kubeflags"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Options carry what every verb needs.
type Options struct {
	kubeflags.Options
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// NewOptions returns Options writing to streams, with kubectl's flags.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{Options: kubeflags.NewOptions(streams), Now: time.Now}
}

// orderKind is how messages name ReleaseOrders.
var orderKind = kubeflags.Kind{
	Name: "ReleaseOrder", Plural: "ReleaseOrders", ListCommand: "cafe release list",
	NewList: func() client.ObjectList { return &cafev1alpha1.ReleaseOrderList{} },
}

// getOrder reads the order named name in the namespace of the flags. It
// returns the client, for the verb's further calls.
func (o *Options) getOrder(ctx context.Context, name string) (client.Client, *cafev1alpha1.ReleaseOrder, error) {
	return kubeflags.GetObject[cafev1alpha1.ReleaseOrder](ctx, &o.Options, orderKind, name)
}
