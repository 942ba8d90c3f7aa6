package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// statusOptions are the flags of `cafe deploy status`.
type statusOptions struct {
	*Options
	// Output is "" for the readable report, or one of outputFormats().
	Output string
	// ShowManagedFields keeps metadata.managedFields in -o json|yaml.
	ShowManagedFields bool
}

// outputFormats are the values of status -o.
func outputFormats() []string { return []string{"json", "yaml"} }

// validate checks the flags before anything is read.
func (o *statusOptions) validate() error {
	if o.Output != "" && !slices.Contains(outputFormats(), o.Output) {
		return fmt.Errorf("--output %q: use one of %v, or leave it out for the readable report", o.Output, outputFormats())
	}
	return nil
}

func (o *statusOptions) run(ctx context.Context, name string) error {
	c, cd, err := o.getCafeDeployment(ctx, name)
	if err != nil {
		return err
	}
	if w := generationWarning(cd); w != "" {
		fmt.Fprintln(o.ErrOut, "Warning: "+w)
	}
	if o.Output == "" {
		return printStatus(o.Out, cd)
	}
	// Objects read through a typed client carry no apiVersion and kind.
	gvk, err := apiutil.GVKForObject(cd, c.Scheme())
	if err != nil {
		return err
	}
	cd.SetGroupVersionKind(gvk)
	if !o.ShowManagedFields {
		cd.ManagedFields = nil
	}
	return printObject(o.Out, cd, o.Output)
}

// printObject writes obj as JSON or YAML, like kubectl -o.
func printObject(out io.Writer, obj any, format string) error {
	data, err := json.MarshalIndent(obj, "", "    ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	} else {
		data = append(data, '\n')
	}
	_, err = out.Write(data)
	return err
}

// generationWarning says when the status describes an older spec than the
// one stored: the controller has not caught up yet, so phase and groups may
// be about the previous spec.
func generationWarning(cd *cafev1alpha1.CafeDeployment) string {
	if cd.Status.ObservedGeneration >= cd.Generation {
		return ""
	}
	return fmt.Sprintf("%s: the controller has not seen the latest spec yet (status.observedGeneration %d < metadata.generation %d); the status below may describe the previous spec",
		ref(cd), cd.Status.ObservedGeneration, cd.Generation)
}

// printStatus writes the readable report of a CafeDeployment's release.
func printStatus(out io.Writer, cd *cafev1alpha1.CafeDeployment) error {
	w := table.NewWriter(out)
	st := cd.Status
	rel := st.Release

	fmt.Fprintf(w, "Name:\t%s\n", cd.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", cd.Namespace)
	fmt.Fprintf(w, "Revision:\tcurrent %s, update %s\n", table.OrDash(st.CurrentRevision), table.OrDash(st.UpdateRevision))
	fmt.Fprintf(w, "Phase:\t%s\n", phaseLine(rel))
	fmt.Fprintf(w, "Paused:\t%s\n", pausedLine(cd))
	fmt.Fprintf(w, "Replicas:\t%s desired, %s ready, %s available, %s updated\n",
		count(cd.Spec.Replicas), count(st.ReadyReplicas), count(st.AvailableReplicas), count(st.UpdatedReplicas))
	if rel.Phase == cafev1alpha1.ReleasePhaseWaitingForConfirm {
		fmt.Fprintf(w, "Next:\t%s\n", command("confirm", cd))
	}

	groups := slices.Clone(rel.Groups)
	slices.SortFunc(groups, func(a, b cafev1alpha1.ReleaseGroupStatus) int { return int(a.Index) - int(b.Index) })
	printSection(w, "Groups", "<none started>", "INDEX\tSTART\tFINISH\tCONFIRMED BY\tCONFIRMED AT", groups, func(g cafev1alpha1.ReleaseGroupStatus) string {
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%s", g.Index, table.Timestamp(g.StartTime), table.Timestamp(g.FinishTime), table.OrDash(g.ConfirmedBy), table.Timestamp(g.ConfirmedAt))
	})
	if cd.Spec.Strategy.Traffic != nil {
		stepped := slices.DeleteFunc(slices.Clone(groups), func(g cafev1alpha1.ReleaseGroupStatus) bool { return g.Traffic == nil })
		printSection(w, "Traffic steps", "<none begun>", "GROUP\tSPLIT\tSTART\tEND\tVERDICT\tMEASURED (PASSED/FAILED/INCONCLUSIVE)\tLATEST VALUES", stepped, func(g cafev1alpha1.ReleaseGroupStatus) string {
			tr := g.Traffic
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%d/%d/%d\t%s", g.Index, tr.Split, table.Timestamp(tr.StartTime), table.Timestamp(tr.EndTime),
				table.OrDash(string(tr.Verdict)), tr.Passed, tr.Failed, tr.Inconclusive, latestValues(tr))
		})
	}
	printSection(w, "Units", "<none reported>", "NAME\tDESIRED\tREADY\tAVAILABLE\tUPDATED", st.Units, func(u cafev1alpha1.UnitStatus) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", u.Name, count(u.DesiredReplicas), count(u.ReadyReplicas), count(u.AvailableReplicas), count(u.UpdatedReplicas))
	})
	printSection(w, "Conditions", "<none reported>", "TYPE\tSTATUS\tREASON\tMESSAGE", st.Conditions, func(c metav1.Condition) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s", c.Type, c.Status, table.OrDash(c.Reason), table.OrDash(c.Message))
	})
	return w.Flush()
}

// latestValues is the latest measurement's values of a traffic step, e.g.
// "success-rate=0.998 (Passed)", or "-".
func latestValues(tr *cafev1alpha1.TrafficStepStatus) string {
	if len(tr.Measurements) == 0 {
		return "-"
	}
	var parts []string
	for _, m := range tr.Measurements[len(tr.Measurements)-1].Metrics {
		parts = append(parts, fmt.Sprintf("%s=%s (%s)", m.Name, table.OrDash(m.Value), m.Outcome))
	}
	return strings.Join(parts, ", ")
}

// printSection writes a titled part of the report: a header and a row per
// item, indented, or none when there is no item.
func printSection[T any](w io.Writer, title, none, header string, items []T, row func(T) string) {
	fmt.Fprintf(w, "\n%s:\n", title)
	if len(items) == 0 {
		fmt.Fprintln(w, "  "+none)
		return
	}
	fmt.Fprintln(w, "  "+header)
	for _, item := range items {
		fmt.Fprintln(w, "  "+row(item))
	}
}

// phaseLine is the phase and "group k of N". k is status.release.currentGroup
// as the controller reports it (the index confirm --group takes; Completed
// reads "group N of N").
func phaseLine(rel cafev1alpha1.ReleaseStatus) string {
	line := table.OrDash(string(rel.Phase))
	if rel.TotalGroups != nil {
		line += fmt.Sprintf(", group %s of %d", count(rel.CurrentGroup), *rel.TotalGroups)
	}
	return line
}

func pausedLine(cd *cafev1alpha1.CafeDeployment) string {
	if !cd.Spec.Strategy.Pause {
		return "no"
	}
	if by := cd.Annotations[cafev1alpha1.PausedByAnnotation]; by != "" {
		return "yes, by " + by
	}
	return "yes"
}

func count(p *int32) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(int(*p))
}
