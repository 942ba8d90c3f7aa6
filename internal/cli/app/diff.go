package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// ErrMoreThanImages is returned by diff --images-only when the contents
// differ in anything but container images.
var ErrMoreThanImages = errors.New("differs in more than images")

// diff prints what changes from revision a to revision b of one app.
func (o *Options) diff(ctx context.Context, appName, a, b string, imagesOnly bool) error {
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
	return o.printDiff(ra, rb, imagesOnly)
}

// diffSpec prints what changes from the published revision to the app's
// spec as it is now: what publishing the next revision would release.
func (o *Options) diffSpec(ctx context.Context, appName string, imagesOnly bool) error {
	c, app, err := o.getApp(ctx, appName)
	if err != nil {
		return err
	}
	if app.Spec.PublishedRevision == "" {
		return fmt.Errorf("%s publishes no revision yet: nothing to compare its spec with (compare two revisions: cafe app diff %s rA rB -n %s)", ref(app), app.Name, app.Namespace)
	}
	published, err := getRevision(ctx, c, app, app.Spec.PublishedRevision)
	if err != nil {
		return err
	}
	current := app.DeepCopy()
	current.Default()
	spec := &cafev1alpha1.AppRevision{}
	spec.Name = app.Name + " spec (next revision)"
	spec.Spec.Template, spec.Spec.Service, spec.Spec.Config = current.Spec.Template, current.Spec.Service, current.Spec.Config
	return o.printDiff(published, spec, imagesOnly)
}

// printDiff writes the summary line and the unified diff of a and b.
func (o *Options) printDiff(a, b *cafev1alpha1.AppRevision, imagesOnly bool) error {
	ta, err := snapshotText(a)
	if err != nil {
		return err
	}
	tb, err := snapshotText(b)
	if err != nil {
		return err
	}
	if ta == tb {
		fmt.Fprintf(o.Out, "%s and %s have the same template, service and config\n", a.Name, b.Name)
		return nil
	}
	images, other := summarizeChange(&a.Spec, &b.Spec)
	if len(other) == 0 {
		fmt.Fprintf(o.Out, "only images differ: %s (the release updates the pods in place)\n", strings.Join(images, ", "))
	} else {
		fmt.Fprintf(o.Out, "differs in more than images: %s\n", strings.Join(other, "; "))
	}
	writeUnifiedDiff(o.Out, a.Name, b.Name, ta, tb, 3)
	if imagesOnly && len(other) > 0 {
		return fmt.Errorf("%s → %s %w: %s", a.Name, b.Name, ErrMoreThanImages, strings.Join(other, "; "))
	}
	return nil
}

// summarizeChange lists the container image changes from a to b, and
// every other difference by field path (containers by index, as in
// containers[0].ports).
func summarizeChange(a, b *cafev1alpha1.AppRevisionSpec) (images, other []string) {
	ma, mb := toMap(a.Template.Spec), toMap(b.Template.Spec)
	for _, field := range []string{"containers", "initContainers"} {
		ca, cb := listOf(ma[field]), listOf(mb[field])
		for i := 0; i < max(len(ca), len(cb)); i++ {
			path := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case i >= len(ca):
				other = append(other, path+" added")
			case i >= len(cb):
				other = append(other, path+" removed")
			case ca[i]["name"] != cb[i]["name"]:
				other = append(other, fmt.Sprintf("%s is %v, was %v", path, cb[i]["name"], ca[i]["name"]))
			default:
				if ca[i]["image"] != cb[i]["image"] {
					change := fmt.Sprintf("%v %v → %v", ca[i]["name"], ca[i]["image"], cb[i]["image"])
					if field == "containers" {
						images = append(images, change)
					} else {
						other = append(other, path+".image changed (init container "+change+": pods are recreated)")
					}
				}
				other = append(other, fieldChanges(path+".", ca[i], cb[i], "name", "image")...)
			}
		}
	}
	other = append(other, fieldChanges("spec.", ma, mb, "containers", "initContainers")...)
	other = append(other, fieldChanges("metadata.", toMap(a.Template.ObjectMeta), toMap(b.Template.ObjectMeta))...)
	if !reflect.DeepEqual(toMap(a.Service), toMap(b.Service)) {
		other = append(other, "service changed")
	}
	if !reflect.DeepEqual(toMap(a.Config), toMap(b.Config)) {
		other = append(other, "config changed (the pods read another ConfigMap: they are recreated)")
	}
	return images, other
}

// fieldChanges names the keys of a and b (but skip) that were added,
// removed or changed.
func fieldChanges(prefix string, a, b map[string]any, skip ...string) []string {
	var out []string
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(skip, k) {
			continue
		}
		va, inA := a[k]
		vb, inB := b[k]
		inA, inB = inA && !emptyValue(va), inB && !emptyValue(vb)
		switch {
		case !inA && !inB:
		case !inA:
			out = append(out, prefix+k+" added")
		case !inB:
			out = append(out, prefix+k+" removed")
		case !reflect.DeepEqual(va, vb):
			out = append(out, prefix+k+" changed")
		}
	}
	return out
}

// emptyValue reports an empty object or list, which the API treats as
// absent ("resources": {}).
func emptyValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return v == nil
}

// toMap is v as JSON sees it (empty fields left out).
func toMap(v any) map[string]any {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %T cannot fail: %v", v, err))
	}
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return out
}

func listOf(v any) []map[string]any {
	items, _ := v.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		m, _ := it.(map[string]any)
		out = append(out, m)
	}
	return out
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
