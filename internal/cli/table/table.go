// Package table holds what every `cafe` verb group prints tables with:
// kubectl-style column alignment and the cell formats shared by them.
package table

import (
	"io"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
