package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// diff prints what changes from revision a to revision b of one app.
func (o *Options) diff(ctx context.Context, appName, a, b string) error {
	c, app, err := o.getApp(ctx, appName)
	if err != nil {
		return err
	}
	ra, err := getRevision(ctx, c, app, a)
	if err != nil {
		return err
	}
	rb, err := getRevision(ctx, c, app, b)
	if err != nil {
		return err
	}
	ta, err := snapshotText(ra)
	if err != nil {
		return err
	}
	tb, err := snapshotText(rb)
	if err != nil {
		return err
	}
	if ta == tb {
		fmt.Fprintf(o.Out, "%s and %s have the same template, service and config\n", ra.Name, rb.Name)
		return nil
	}
	writeUnifiedDiff(o.Out, ra.Name, rb.Name, ta, tb, 3)
	return nil
}

// snapshotText renders what a revision snapshots as lines that diff well:
// template and service as YAML, each env value on one line, each config
// file line by line.
func snapshotText(rev *cafev1alpha1.AppRevision) (string, error) {
	var b strings.Builder
	data, err := yaml.Marshal(map[string]any{"template": rev.Spec.Template, "service": rev.Spec.Service})
	if err != nil {
		return "", err
	}
	b.Write(data)
	cfg := rev.Spec.Config
	b.WriteString("config:\n")
	if cfg.MountPath != "" {
		fmt.Fprintf(&b, "  mountPath: %s\n", cfg.MountPath)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		fmt.Fprintf(&b, "  env.%s: %q\n", k, cfg.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Files)) {
		fmt.Fprintf(&b, "  files[%s]: |\n", k)
		for _, line := range strings.Split(strings.TrimSuffix(cfg.Files[k], "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	return b.String(), nil
}

// editOp is one line of a line diff.
type editOp struct {
	Kind byte // ' ', '-' or '+'
	Line string
	// A and B are the 1-based line numbers in the old and new text.
	A, B int
}

// lineDiff returns the edit script from a to b (longest common
// subsequence of lines).
func lineDiff(a, b []string) []editOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []editOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, editOp{' ', a[i], i + 1, j + 1})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			// Deletions first, as diff(1) prints them.
			ops = append(ops, editOp{'-', a[i], i + 1, j})
			i++
		default:
			ops = append(ops, editOp{'+', b[j], i, j + 1})
			j++
		}
	}
	return ops
}

// writeUnifiedDiff writes the differences of a and b in unified format
// with context lines around each change.
func writeUnifiedDiff(out io.Writer, nameA, nameB, a, b string, context int) {
	ops := lineDiff(strings.Split(strings.TrimSuffix(a, "\n"), "\n"), strings.Split(strings.TrimSuffix(b, "\n"), "\n"))
	fmt.Fprintf(out, "--- %s\n+++ %s\n", nameA, nameB)
	for start := 0; start < len(ops); {
		// Find the next change.
		for start < len(ops) && ops[start].Kind == ' ' {
			start++
		}
		if start == len(ops) {
			return
		}
		from := max(start-context, 0)
		end := start
		// Extend the hunk while changes are within 2*context lines.
		for k := start; k < len(ops); k++ {
			if ops[k].Kind != ' ' {
				end = k
			} else if k-end > 2*context {
				break
			}
		}
		to := min(end+context+1, len(ops))
		var la, lb int
		for _, op := range ops[from:to] {
			if op.Kind != '+' {
				la++
			}
			if op.Kind != '-' {
				lb++
			}
		}
		fmt.Fprintf(out, "@@ -%d,%d +%d,%d @@\n", hunkStart(ops[from].A, op0(ops[from], '+')), la, hunkStart(ops[from].B, op0(ops[from], '-')), lb)
		for _, op := range ops[from:to] {
			fmt.Fprintf(out, "%c%s\n", op.Kind, op.Line)
		}
		start = to
	}
}

// op0 reports whether op does not consume a line of the side that kind
// skips, in which case its line number there is the one before.
func op0(op editOp, kind byte) bool { return op.Kind == kind }

func hunkStart(n int, before bool) int {
	if before {
		return n + 1
	}
	return n
}
