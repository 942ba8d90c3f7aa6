package nodelifecycle

import (
	"sort"
	"strings"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Signal is one source of evidence about a node, as gathered.
type Signal struct {
	Name cafev1alpha1.NodeSignal
	// Bad: the signal says the node is unhealthy.
	Bad bool
	// Since is when the signal turned bad.
	Since time.Time
	// Evidence says, in words that do not change while the state holds,
	// what was seen (written to the node condition and events).
	Evidence string
}

// verdictInput is everything judgeNode looks at.
type verdictInput struct {
	Policy  *cafev1alpha1.NodeLifecyclePolicySpec
	Signals []Signal
	// Previous is the verdict recorded on the node ("" = none yet).
	Previous cafev1alpha1.NodeVerdict
	// CleanSince is since when no enabled signal has been bad (zero when
	// one is bad now, or when unknown: a restarted controller waits the
	// whole recovery time again).
	CleanSince time.Time
	Now        time.Time
}

// nodeJudgement is the verdict on one node and its evidence.
type nodeJudgement struct {
	Verdict cafev1alpha1.NodeVerdict
	// Bad lists the enabled bad signals, earliest first.
	Bad []Signal
	// FirstBad is when the earliest of them turned bad.
	FirstBad time.Time
	// Message is the human-readable evidence (stable while nothing changes).
	Message string
	// RequeueAfter is when the verdict could change without any new event
	// (a threshold or the recovery time reached); 0 when nothing pends.
	RequeueAfter time.Duration
}

// judgeNode judges a node from its signals. The rules:
//   - only signals the policy enables count; each counts once however many
//     things it saw (two external reports are one ExternalReport signal);
//   - k signals "agree for d" when at least k are bad now and the k-th of
//     them to turn bad did so d ago;
//   - Failed when failed.minSignals agree for failed.forSeconds; Suspect
//     when suspect.minSignals agree for suspect.forSeconds;
//   - a verdict never softens while any signal is bad: Failed stays Failed
//     (its pods are on the move) and Suspect stays Suspect, until no signal
//     has been bad for recoverySeconds; then the node is Healthy.
func judgeNode(in verdictInput) nodeJudgement {
	p := in.Policy
	var d nodeJudgement
	for _, s := range in.Signals {
		if s.Bad && p.SignalEnabled(s.Name) {
			d.Bad = append(d.Bad, s)
		}
	}
	sort.SliceStable(d.Bad, func(i, j int) bool { return d.Bad[i].Since.Before(d.Bad[j].Since) })
	if len(d.Bad) > 0 {
		d.FirstBad = d.Bad[0].Since
	}

	failed := d.agreeing(p.Failed, in.Now)
	suspect := d.agreeing(p.Suspect, in.Now)
	recovered := len(d.Bad) == 0 && !in.CleanSince.IsZero() && !in.CleanSince.Add(seconds(p.RecoverySeconds)).After(in.Now)
	switch {
	case failed:
		d.Verdict = cafev1alpha1.NodeVerdictFailed
	case in.Previous == cafev1alpha1.NodeVerdictFailed && !recovered:
		d.Verdict = cafev1alpha1.NodeVerdictFailed
	case suspect:
		d.Verdict = cafev1alpha1.NodeVerdictSuspect
	case in.Previous == cafev1alpha1.NodeVerdictSuspect && !recovered:
		d.Verdict = cafev1alpha1.NodeVerdictSuspect
	default:
		d.Verdict = cafev1alpha1.NodeVerdictHealthy
	}

	// Wake-ups: a threshold not yet reached, or the end of the recovery time.
	if d.Verdict != cafev1alpha1.NodeVerdictFailed {
		d.wakeAt(p.Failed, in.Now)
		if d.Verdict == cafev1alpha1.NodeVerdictHealthy {
			d.wakeAt(p.Suspect, in.Now)
		}
	}
	if d.Verdict != cafev1alpha1.NodeVerdictHealthy && len(d.Bad) == 0 {
		if in.CleanSince.IsZero() {
			d.requeue(seconds(p.RecoverySeconds))
		} else {
			d.requeue(in.CleanSince.Add(seconds(p.RecoverySeconds)).Sub(in.Now))
		}
	}
	d.Message = d.message(in)
	return d
}

// agreeing reports whether t.minSignals bad signals have agreed for
// t.forSeconds.
func (d *nodeJudgement) agreeing(t cafev1alpha1.VerdictThreshold, now time.Time) bool {
	k := int(t.MinSignals)
	if k < 1 || len(d.Bad) < k {
		return false
	}
	return !d.Bad[k-1].Since.Add(seconds(t.ForSeconds)).After(now)
}

func (d *nodeJudgement) wakeAt(t cafev1alpha1.VerdictThreshold, now time.Time) {
	k := int(t.MinSignals)
	if k < 1 || len(d.Bad) < k {
		return
	}
	d.requeue(d.Bad[k-1].Since.Add(seconds(t.ForSeconds)).Sub(now))
}

func (d *nodeJudgement) requeue(after time.Duration) {
	if after > 0 && (d.RequeueAfter == 0 || after < d.RequeueAfter) {
		d.RequeueAfter = after
	}
}

func (d *nodeJudgement) message(in verdictInput) string {
	var b strings.Builder
	switch {
	case len(d.Bad) == 0 && d.Verdict == cafev1alpha1.NodeVerdictHealthy:
		return "no bad signal"
	case len(d.Bad) == 0:
		b.WriteString("no bad signal now; recovering")
		if !in.CleanSince.IsZero() {
			b.WriteString(" since " + in.CleanSince.UTC().Format(time.RFC3339))
		}
		return b.String()
	}
	b.WriteString(itoa(len(d.Bad)) + " bad signal")
	if len(d.Bad) > 1 {
		b.WriteString("s")
	}
	b.WriteString(": ")
	for i, s := range d.Bad {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(string(s.Name) + ": " + s.Evidence)
	}
	return b.String()
}

func seconds(s int32) time.Duration { return time.Duration(s) * time.Second }
