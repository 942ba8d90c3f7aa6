// Package table holds what every `cafe` verb group prints with:
// kubectl-style column alignment, the cell formats shared by the tables,
// and whole objects for -o yaml|json.
package table

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// NewWriter aligns tab-separated columns as kubectl's tables do.
func NewWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
}

// OrDash prints an empty cell as "-".
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Timestamp prints times in UTC RFC 3339, as recorded for audit; "-" when
// unset.
func Timestamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// PrintObject writes obj as -o format asks, yaml or json, without its
// managedFields (they are the server's bookkeeping, not the object).
func PrintObject(out io.Writer, obj metav1.Object, format string) error {
	if format != "yaml" && format != "json" {
		return fmt.Errorf("--output %q: want yaml or json", format)
	}
	obj.SetManagedFields(nil)
	data, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	if format == "json" {
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return err
		}
		data = append(data, '\n')
	}
	_, err = out.Write(data)
	return err
}
