package release

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// createOptions are the flags of `cafe release create`.
type createOptions struct {
	File            string
	Title           string
	Description     string
	Ticket          string
	Apps            []string
	DependsOn       []string
	Approvals       int32
	ApproverGroups  []string
	WindowStart     string
	WindowEnd       string
	FailurePolicy   string
	ProgressDeadine time.Duration
	RetentionDays   int32
}

// buildOrder makes the order the flags describe (without -f).
func (c createOptions) buildOrder(name string) (*cafev1alpha1.ReleaseOrder, error) {
	o := &cafev1alpha1.ReleaseOrder{}
	if name == "" {
		o.GenerateName = "release-"
	} else {
		o.Name = name
	}
	o.Spec.Title, o.Spec.Description, o.Spec.ChangeTicket = c.Title, c.Description, c.Ticket
	if o.Spec.Title == "" {
		return nil, fmt.Errorf("--title is required: say in one line what the release is")
	}
	if len(c.Apps) == 0 {
		return nil, fmt.Errorf("--app is required: --app <app>=<revision>, once per app (e.g. --app pay=r3)")
	}
	for _, a := range c.Apps {
		app, rev, ok := strings.Cut(a, "=")
		if !ok || app == "" || rev == "" {
			return nil, fmt.Errorf("--app %q: want <app>=<revision>, e.g. pay=r3", a)
		}
		full, err := cafev1alpha1.ResolveAppRevisionName(app, rev)
		if err != nil {
			return nil, fmt.Errorf("--app %q: %w", a, err)
		}
		o.Spec.Apps = append(o.Spec.Apps, cafev1alpha1.ReleaseOrderApp{Name: app, Revision: full})
	}
	for _, d := range c.DependsOn {
		app, deps, ok := strings.Cut(d, "=")
		entry := o.Spec.App(app)
		if !ok || entry == nil || deps == "" {
			return nil, fmt.Errorf("--depends-on %q: want <app>=<app>[,<app>...] naming apps given with --app", d)
		}
		entry.DependsOn = append(entry.DependsOn, strings.Split(deps, ",")...)
	}
	if c.Approvals > 0 {
		o.Spec.Approval.Required = ptr.To(c.Approvals)
	}
	o.Spec.Approval.ApproverGroups = c.ApproverGroups
	if c.WindowStart != "" || c.WindowEnd != "" {
		o.Spec.Window = &cafev1alpha1.ReleaseWindow{}
		for _, w := range []struct {
			flag, value string
			into        **metav1.Time
		}{{"--window-start", c.WindowStart, &o.Spec.Window.Start}, {"--window-end", c.WindowEnd, &o.Spec.Window.End}} {
			if w.value == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, w.value)
			if err != nil {
				return nil, fmt.Errorf("%s %q: want an RFC 3339 time, e.g. 2026-05-01T22:00:00+08:00", w.flag, w.value)
			}
			*w.into = ptr.To(metav1.NewTime(t))
		}
	}
	o.Spec.FailurePolicy = cafev1alpha1.FailurePolicy(c.FailurePolicy)
	if c.ProgressDeadine > 0 {
		o.Spec.ProgressDeadlineSeconds = ptr.To(int32(c.ProgressDeadine.Seconds()))
	}
	if c.RetentionDays > 0 {
		o.Spec.RetentionDays = ptr.To(c.RetentionDays)
	}
	return o, nil
}

// create is `cafe release create`.
func (o *Options) create(ctx context.Context, name string, c createOptions) error {
	cl, ns, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	var order *cafev1alpha1.ReleaseOrder
	if c.File != "" {
		data, err := os.ReadFile(c.File)
		if err != nil {
			return err
		}
		order = &cafev1alpha1.ReleaseOrder{}
		if err := yaml.UnmarshalStrict(data, order); err != nil {
			return fmt.Errorf("%s: %w", c.File, err)
		}
		if name != "" {
			order.Name = name
		}
	} else if order, err = c.buildOrder(name); err != nil {
		return err
	}
	order.Namespace = ns
	order.Kind, order.APIVersion = "", ""
	if err := cl.Create(ctx, order); err != nil {
		return fmt.Errorf("creating the release order: %w", err)
	}
	fmt.Fprintf(o.Out, "created ReleaseOrder %s/%s, recorded as requested by %s\n", ns, order.Name, table.OrDash(order.Spec.RequestedBy))
	fmt.Fprintf(o.Out, "it needs %d approval(s) from people other than the requester: cafe release approve %s -n %s\n", order.RequiredApprovals(), order.Name, ns)
	return nil
}
