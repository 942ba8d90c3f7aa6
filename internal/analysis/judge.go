package analysis

import (
	"fmt"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Verdict is where an analysis stands after its measurements so far.
type Verdict struct {
	// Outcome is Passed or Failed once decided, empty while the analysis
	// runs.
	Outcome cafev1alpha1.AnalysisOutcome
	// Passed, Failed and Inconclusive count the measurements by outcome.
	Passed, Failed, Inconclusive int
	// Due is when the next measurement is due; zero once decided.
	Due time.Time
	// Reason says, in words, what the verdict rests on or what it waits for.
	Reason string
}

// Tally is what an analysis measured so far: every measurement counted by
// outcome, and the latest ones kept (oldest first; maybe fewer than
// counted, for a record of bounded size).
type Tally struct {
	Passed, Failed, Inconclusive int
	Recent                       []Measurement
}

// Add counts m and keeps it among the recent measurements, at most keep.
func (t *Tally) Add(m Measurement, keep int) {
	switch m.Outcome {
	case cafev1alpha1.AnalysisPassed:
		t.Passed++
	case cafev1alpha1.AnalysisFailed:
		t.Failed++
	default:
		t.Inconclusive++
	}
	t.Recent = append(t.Recent, m)
	if len(t.Recent) > keep {
		t.Recent = t.Recent[len(t.Recent)-keep:]
	}
}

// Judge decides an analysis from its measurements so far, begun at
// started. It fails as soon as more than failureLimit measurements failed
// and passes once count measurements were conclusive without that;
// inconclusive measurements count for neither (missing data never passes).
// Measurements are due every intervalSeconds from started.
func Judge(spec *cafev1alpha1.TrafficAnalysisSpec, started time.Time, t Tally) Verdict {
	v := Verdict{Passed: t.Passed, Failed: t.Failed, Inconclusive: t.Inconclusive}
	switch {
	case v.Failed > int(spec.FailureLimit):
		v.Outcome = cafev1alpha1.AnalysisFailed
		v.Reason = fmt.Sprintf("%d of %d conclusive measurements failed, more than the failure limit of %d", v.Failed, v.Passed+v.Failed, spec.FailureLimit)
		if m, ok := lastWith(t.Recent, cafev1alpha1.AnalysisFailed); ok {
			v.Reason += "; the last failed one: " + m.Summary()
		}
		return v
	case v.Passed+v.Failed >= int(spec.Count):
		v.Outcome = cafev1alpha1.AnalysisPassed
		v.Reason = fmt.Sprintf("%d of %d conclusive measurements passed (failure limit %d)", v.Passed, v.Passed+v.Failed, spec.FailureLimit)
		return v
	}
	last := started
	if n := len(t.Recent); n > 0 {
		last = t.Recent[n-1].At
	}
	v.Due = last.Add(time.Duration(spec.IntervalSeconds) * time.Second)
	v.Reason = fmt.Sprintf("%d of %d conclusive measurements so far (%d passed, %d failed)", v.Passed+v.Failed, spec.Count, v.Passed, v.Failed)
	if n := len(t.Recent); n > 0 && t.Recent[n-1].Outcome == cafev1alpha1.AnalysisInconclusive {
		v.Reason += "; waiting, the last measurement was " + t.Recent[n-1].Summary()
	}
	return v
}

// lastWith is the latest measurement with the given outcome.
func lastWith(measurements []Measurement, outcome cafev1alpha1.AnalysisOutcome) (Measurement, bool) {
	for i := len(measurements) - 1; i >= 0; i-- {
		if measurements[i].Outcome == outcome {
			return measurements[i], true
		}
	}
	return Measurement{}, false
}
