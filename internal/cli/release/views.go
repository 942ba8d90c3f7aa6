package release

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// get is `cafe release get ORDER`.
func (o *Options) get(ctx context.Context, name, output string) error {
	_, ro, err := o.getOrder(ctx, name)
	if err != nil {
		return err
	}
	if output != "" {
		return table.PrintObject(o.Out, ro, output)
	}
	return printOrder(o.Out, ro)
}

func printOrder(out io.Writer, ro *cafev1alpha1.ReleaseOrder) error {
	s, st := ro.Spec, ro.Status
	fmt.Fprintf(out, "ReleaseOrder %s/%s: %s\n", ro.Namespace, ro.Name, s.Title)
	fmt.Fprintf(out, "Phase:          %s\n", table.OrDash(string(st.Phase)))
	if st.Message != "" {
		fmt.Fprintf(out, "Message:        %s\n", st.Message)
	}
	fmt.Fprintf(out, "Change ticket:  %s\n", table.OrDash(s.ChangeTicket))
	fmt.Fprintf(out, "Requested by:   %s at %s\n", table.OrDash(s.RequestedBy), ro.CreationTimestamp.UTC().Format(time.RFC3339))
	var approvals []string
	for _, a := range st.Approvals {
		approvals = append(approvals, fmt.Sprintf("%s at %s%s", a.User, a.Time.UTC().Format(time.RFC3339), quoted(a.Comment)))
	}
	fmt.Fprintf(out, "Approvals:      %d of %d: %s\n", len(st.Approvals), ro.RequiredApprovals(), table.OrDash(strings.Join(approvals, "; ")))
	if len(s.Approval.ApproverGroups) > 0 {
		fmt.Fprintf(out, "Approver groups: %s\n", strings.Join(s.Approval.ApproverGroups, ", "))
	}
	if w := s.Window; w != nil {
		fmt.Fprintf(out, "Window:         %s to %s\n", table.Timestamp(w.Start), table.Timestamp(w.End))
	}
	fmt.Fprintf(out, "Failure policy: %s\n", ro.EffectiveFailurePolicy())
	if st.StartedAt != nil {
		fmt.Fprintf(out, "Started:        %s by %s\n", table.Timestamp(st.StartedAt), table.OrDash(st.StartedBy))
	}
	if st.FinishedAt != nil {
		fmt.Fprintf(out, "Finished:       %s\n", table.Timestamp(st.FinishedAt))
	}
	fmt.Fprintln(out)
	w := table.NewWriter(out)
	fmt.Fprintln(w, "APP\tDEPENDS-ON\tFROM\tTO\tPHASE\tGROUPS\tSTARTED\tFINISHED\tMESSAGE")
	for _, a := range s.Apps {
		as := st.AppStatus(a.Name)
		if as == nil {
			as = &cafev1alpha1.ReleaseOrderAppStatus{Name: a.Name, ToRevision: a.Revision}
		}
		finished := as.FinishedAt
		if as.RolledBackAt != nil {
			finished = as.RolledBackAt
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", a.Name, table.OrDash(strings.Join(a.DependsOn, ",")), table.OrDash(as.FromRevision), a.Revision,
			table.OrDash(string(as.Phase)), as.GroupsDone, as.TotalGroups, table.Timestamp(as.StartedAt), table.Timestamp(finished), as.Message)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, c := range st.Conditions {
		fmt.Fprintf(out, "Condition %s=%s (%s): %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	fmt.Fprintf(out, "Audit trail: %d entries (cafe release history %s; cafe audit verify %s)\n", len(st.Audit), ro.Name, ro.Name)
	return nil
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", s)
}

// list is `cafe release list`.
func (o *Options) list(ctx context.Context) error {
	list := &cafev1alpha1.ReleaseOrderList{}
	ns, err := o.List(ctx, orderKind, list)
	if err != nil {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintf(o.Out, "No ReleaseOrders in namespace %s\n", ns)
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[j].CreationTimestamp.Before(&list.Items[i].CreationTimestamp) })
	w := table.NewWriter(o.Out)
	fmt.Fprintln(w, "NAME\tTITLE\tPHASE\tAPPS\tAPPROVALS\tREQUESTER\tCREATED")
	for _, ro := range list.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", ro.Name, ro.Spec.Title, table.OrDash(string(ro.Status.Phase)), ro.Status.AppsSucceeded, len(ro.Spec.Apps),
			table.OrDash(ro.Status.ApprovalSummary), table.OrDash(ro.Spec.RequestedBy), ro.CreationTimestamp.UTC().Format(time.RFC3339))
	}
	return w.Flush()
}

// history is `cafe release history ORDER`: the audit trail.
func (o *Options) history(ctx context.Context, name string) error {
	_, ro, err := o.getOrder(ctx, name)
	if err != nil {
		return err
	}
	w := table.NewWriter(o.Out)
	fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tCHANGE\tREASON")
	for _, e := range ro.Status.Audit {
		change := "-"
		if e.Before != "" || e.After != "" {
			change = table.OrDash(e.Before) + " → " + table.OrDash(e.After)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Actor, e.Action, table.OrDash(e.Target), change, e.Reason)
	}
	return w.Flush()
}

// appStats are the statistics of one app over finished orders.
type appStats struct {
	App       string
	Orders    int
	Succeeded int
	RolledBck int
	Durations []time.Duration
}

// Stats computes per-app statistics from finished orders (created at or
// after since), for apps matching app (all when empty).
func Stats(orders []cafev1alpha1.ReleaseOrder, app string, since time.Time) []appStats {
	by := map[string]*appStats{}
	for _, ro := range orders {
		if !ro.IsFinished() || ro.Status.StartedAt == nil || ro.CreationTimestamp.Time.Before(since) {
			continue
		}
		for _, as := range ro.Status.Apps {
			if (app != "" && as.Name != app) || as.StartedAt == nil {
				continue
			}
			s := by[as.Name]
			if s == nil {
				s = &appStats{App: as.Name}
				by[as.Name] = s
			}
			s.Orders++
			if as.Phase == cafev1alpha1.AppSucceeded {
				s.Succeeded++
				if as.FinishedAt != nil {
					s.Durations = append(s.Durations, as.FinishedAt.Sub(as.StartedAt.Time))
				}
			}
			if as.RollbackStartedAt != nil {
				s.RolledBck++
			}
		}
	}
	out := make([]appStats, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}

func (s appStats) mean() time.Duration {
	if len(s.Durations) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.Durations {
		sum += d
	}
	return sum / time.Duration(len(s.Durations))
}

// p95 is the nearest-rank 95th percentile.
func (s appStats) p95() time.Duration {
	if len(s.Durations) == 0 {
		return 0
	}
	d := append([]time.Duration(nil), s.Durations...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(math.Ceil(0.95*float64(len(d))))-1]
}

// stats is `cafe release stats`.
func (o *Options) stats(ctx context.Context, app string, since time.Duration) error {
	list := &cafev1alpha1.ReleaseOrderList{}
	ns, err := o.List(ctx, orderKind, list)
	if err != nil {
		return err
	}
	var from time.Time
	if since > 0 {
		from = o.Now().Add(-since)
	}
	stats := Stats(list.Items, app, from)
	if len(stats) == 0 {
		fmt.Fprintf(o.Out, "No finished release order in %s released an app%s\n", ns, map[bool]string{true: " named " + app, false: ""}[app != ""])
		return nil
	}
	w := table.NewWriter(o.Out)
	fmt.Fprintln(w, "APP\tRELEASES\tSUCCEEDED\tSUCCESS-RATE\tMEAN-DURATION\tP95-DURATION\tROLLBACKS")
	for _, s := range stats {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f%%\t%s\t%s\t%d\n", s.App, s.Orders, s.Succeeded, 100*float64(s.Succeeded)/float64(s.Orders),
			s.mean().Round(time.Second), s.p95().Round(time.Second), s.RolledBck)
	}
	return w.Flush()
}
