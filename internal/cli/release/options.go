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
	"io"
	"time"

	"github.com/cafe-io/cafe/internal/cli/kubeflags"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Options carry what every verb needs.
type Options struct {
	genericiooptions.IOStreams
	ConfigFlags kubeflags.Flags
	// Client, when set, is used instead of one built from ConfigFlags.
	Client client.Client
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// NewOptions returns Options writing to streams, with kubectl's flags.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{IOStreams: streams, ConfigFlags: kubeflags.New(), Now: time.Now}
}

func (o *Options) clientAndNamespace() (client.Client, string, error) {
	return kubeflags.ClientAndNamespace(o.ConfigFlags, o.Client)
}

func getOrder(ctx context.Context, c client.Client, ns, name string) (*cafev1alpha1.ReleaseOrder, error) {
	o := &cafev1alpha1.ReleaseOrder{}
	if err := kubeflags.Get(ctx, c, o, "ReleaseOrder", ns, name, "cafe release list -n "+ns); err != nil {
		return nil, err
	}
	return o, nil
}

func printObject(out io.Writer, obj client.Object, format string) error {
	obj.SetManagedFields(nil)
	var data []byte
	var err error
	if format == "json" {
		data, err = yaml.Marshal(obj)
		if err == nil {
			data, err = yaml.YAMLToJSON(data)
			data = append(data, '\n')
		}
	} else {
		data, err = yaml.Marshal(obj)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	return err
}
