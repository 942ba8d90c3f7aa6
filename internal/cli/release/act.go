package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// ErrRefused is returned when CAFE refused an action when it processed it
// (the admission webhook refuses most before they are recorded).
var ErrRefused = errors.New("action refused")

// actOptions are the flags every action takes.
type actOptions struct {
	Comment string
	App     string
	NoWait  bool
	Timeout time.Duration
}

// act creates a ReleaseAction and, unless NoWait, waits until the
// controller has processed it and reports the result.
func (o *Options) act(ctx context.Context, order string, action cafev1alpha1.ReleaseActionType, ao actOptions) error {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	a := &cafev1alpha1.ReleaseAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: order + "-" + action.Verb() + "-"},
		Spec:       cafev1alpha1.ReleaseActionSpec{Order: order, Action: action, Comment: ao.Comment, App: ao.App},
	}
	if err := c.Create(ctx, a); err != nil {
		return fmt.Errorf("%s ReleaseOrder %s/%s: %w", action.Verb(), ns, order, err)
	}
	fmt.Fprintf(o.Out, "%s of ReleaseOrder %s/%s recorded as ReleaseAction %s by %s\n", action, ns, order, a.Name, table.OrDash(a.Spec.Actor))
	if ao.NoWait {
		return nil
	}
	var rec *cafev1alpha1.ReleaseActionRecord
	var ro *cafev1alpha1.ReleaseOrder
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, ao.Timeout, true, func(ctx context.Context) (bool, error) {
		ro = &cafev1alpha1.ReleaseOrder{}
		if err := orderKind.Get(ctx, c, ro, ns, order); err != nil {
			return false, err
		}
		for i := range ro.Status.Actions {
			if ro.Status.Actions[i].Name == a.Name {
				rec = &ro.Status.Actions[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for CAFE to process %s (it stays recorded and will be processed when the controller runs): %w", a.Name, err)
	}
	if rec.Result == cafev1alpha1.ActionRefused {
		return fmt.Errorf("%w: %s", ErrRefused, rec.Message)
	}
	fmt.Fprintf(o.Out, "accepted: ReleaseOrder %s is %s", order, ro.Status.Phase)
	if ro.Status.Phase == cafev1alpha1.OrderPendingApproval || action == cafev1alpha1.ActionApprove {
		fmt.Fprintf(o.Out, " (approvals %s)", ro.Status.ApprovalSummary)
	}
	fmt.Fprintln(o.Out)
	if ro.Status.Message != "" {
		fmt.Fprintln(o.Out, ro.Status.Message)
	}
	return nil
}
