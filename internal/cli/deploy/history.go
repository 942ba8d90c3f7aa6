package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

func (o *Options) history(ctx context.Context, name string) error {
	c, cd, err := o.getCafeDeployment(ctx, name)
	if err != nil {
		return err
	}
	revs, err := listRevisions(ctx, c, cd)
	if err != nil {
		return err
	}
	if len(revs) == 0 {
		fmt.Fprintf(o.Out, "%s has no revision history yet: the controller records a revision when it first sees a template\n", ref(cd))
		return nil
	}
	return printHistory(o.Out, cd, revs)
}

// printHistory writes one line per revision, oldest first, marking the
// revision the pods ran before the release (current) and the one being
// released (update).
func printHistory(out io.Writer, cd *cafev1alpha1.CafeDeployment, revs []historyEntry) error {
	w := table.NewWriter(out)
	fmt.Fprintln(w, "REVISION\tHASH\tCREATED\tIMAGES\tMARK")
	for _, r := range revs {
		imgs := images(r.Template)
		if r.Err != nil {
			imgs = "<unreadable: " + r.Err.Error() + ">"
		}
		created := r.Created
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", r.Number, r.Hash, table.Timestamp(&created), imgs, table.OrDash(marks(cd, r.Hash)))
	}
	return w.Flush()
}

// marks says which of status.currentRevision and status.updateRevision
// hash is.
func marks(cd *cafev1alpha1.CafeDeployment, hash string) string {
	var m []string
	if hash == "" {
		return ""
	}
	if hash == cd.Status.CurrentRevision {
		m = append(m, "current")
	}
	if hash == cd.Status.UpdateRevision {
		m = append(m, "update")
	}
	return strings.Join(m, ",")
}
