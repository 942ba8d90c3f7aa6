package watchrec

import (
	"fmt"
	"strings"
)

// Names of the checks, used in [Violation.Check].
const (
	CheckNameLossless   = "lossless"
	CheckNameWaterLevel = "water-level"
)

// Violation is one breach of an invariant found in the log.
type Violation struct {
	// Check is the name of the check that found it (CheckNameLossless, ...).
	Check string
	// Pod is the pod the violation is about, or "" (for a gap, for example).
	Pod string
	// Seq and ResourceVersion identify the event at which the invariant broke.
	Seq             uint64
	ResourceVersion uint64
	// Reason says what happened and why it breaks the invariant.
	Reason string
}

// String renders the violation on one line.
func (v Violation) String() string {
	pod := ""
	if v.Pod != "" {
		pod = fmt.Sprintf(" pod %q", v.Pod)
	}
	return fmt.Sprintf("[%s] event #%d rv=%d%s: %s", v.Check, v.Seq, v.ResourceVersion, pod, v.Reason)
}

// maxReported bounds Report's output; a broken protocol tends to break many times.
const maxReported = 50

// Report formats violations for t.Fatal, one per line. It returns "" when there are
// none, so that
//
//	if msg := watchrec.Report(watchrec.CheckLossless(events)); msg != "" {
//		t.Fatal(msg)
//	}
//
// works.
func Report(violations []Violation) string {
	if len(violations) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d invariant violation(s) in the watch stream:", len(violations))
	for i, v := range violations {
		if i == maxReported {
			fmt.Fprintf(&b, "\n  ... and %d more", len(violations)-maxReported)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}

// gapViolation reports a Gap event: whatever happened in it cannot be checked.
func gapViolation(check string, ev Event) Violation {
	return Violation{
		Check:           check,
		Seq:             ev.Seq,
		ResourceVersion: ev.ResourceVersion,
		Reason:          "the watch stream has a gap, so the invariant cannot be proven: " + ev.Message,
	}
}
