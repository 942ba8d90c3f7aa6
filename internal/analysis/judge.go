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

// Judge decides an analysis from its measurements (oldest first), begun at
// started. It fails as soon as more than failureLimit measurements failed
// and passes once count measurements were conclusive without that;
// inconclusive measurements count for neither (missing data never passes).
// Measurements are due every intervalSeconds from started.
func Judge(spec *cafev1alpha1.TrafficAnalysisSpec, started time.Time, measurements []Measurement) Verdict {
	var v Verdict
	last := started
	for _, m := range measurements {
		switch m.Outcome {
		case cafev1alpha1.AnalysisPassed:
			v.Passed++
		case cafev1alpha1.AnalysisFailed:
			v.Failed++
		default:
			v.Inconclusive++
		}
		last = m.At
	}
	switch {
	case v.Failed > int(spec.FailureLimit):
		v.Outcome = cafev1alpha1.AnalysisFailed
		v.Reason = fmt.Sprintf("%d of %d conclusive measurements failed, more than the failure limit of %d", v.Failed, v.Passed+v.Failed, spec.FailureLimit)
		if m, ok := lastWith(measurements, cafev1alpha1.AnalysisFailed); ok {
			v.Reason += "; the last failed one: " + m.Summary()
		}
		return v
	case v.Passed+v.Failed >= int(spec.Count):
		v.Outcome = cafev1alpha1.AnalysisPassed
		v.Reason = fmt.Sprintf("%d of %d conclusive measurements passed (failure limit %d)", v.Passed, v.Passed+v.Failed, spec.FailureLimit)
		return v
	}
	v.Due = last.Add(time.Duration(spec.IntervalSeconds) * time.Second)
	v.Reason = fmt.Sprintf("%d of %d conclusive measurements so far (%d passed, %d failed)", v.Passed+v.Failed, spec.Count, v.Passed, v.Failed)
	if n := len(measurements); n > 0 && measurements[n-1].Outcome == cafev1alpha1.AnalysisInconclusive {
		v.Reason += "; waiting, the last measurement was " + measurements[n-1].Summary()
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
