package analysis

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// measured is a measurement with only what Judge reads.
func measured(at time.Time, outcome cafev1alpha1.AnalysisOutcome) Measurement {
	return Measurement{At: at, Outcome: outcome, Metrics: []MetricValue{{Name: "success-rate", Outcome: outcome, Message: "0.5, not at least 0.99"}}}
}

// tally counts measurements, keeping the last 5.
func tally(ms ...Measurement) Tally {
	var t Tally
	for _, m := range ms {
		t.Add(m, 5)
	}
	return t
}

func TestJudgeFailsOnTheFirstFailureBeyondTheLimitAndPassesOnlyOnConclusiveMeasurements(t *testing.T) {
	g := NewWithT(t)
	spec := &cafev1alpha1.TrafficAnalysisSpec{IntervalSeconds: 10, Count: 3, FailureLimit: 1}
	start := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return start.Add(time.Duration(10*i) * time.Second) }
	P, F, I := cafev1alpha1.AnalysisPassed, cafev1alpha1.AnalysisFailed, cafev1alpha1.AnalysisInconclusive

	v := Judge(spec, start, Tally{})
	g.Expect(v.Outcome).To(BeEmpty())
	g.Expect(v.Due).To(Equal(at(1)), "the first measurement comes one interval after the step began")

	v = Judge(spec, start, tally(measured(at(1), P), measured(at(2), F), measured(at(3), P)))
	g.Expect(v.Outcome).To(Equal(P), "one failure is within the limit of 1")
	g.Expect(v.Due.IsZero()).To(BeTrue())

	v = Judge(spec, start, tally(measured(at(1), F), measured(at(2), F)))
	g.Expect(v.Outcome).To(Equal(F), "the second failure is beyond the limit: decided before count is reached")
	g.Expect(v.Reason).To(ContainSubstring("2 of 2 conclusive measurements failed"))
	g.Expect(v.Reason).To(ContainSubstring("success-rate: 0.5, not at least 0.99"))

	// Missing data never passes: any number of inconclusive measurements
	// leaves the analysis running, and says so.
	var ms []Measurement
	for i := 1; i <= 10; i++ {
		ms = append(ms, measured(at(i), I))
	}
	v = Judge(spec, start, tally(ms...))
	g.Expect(v.Outcome).To(BeEmpty())
	g.Expect(v.Inconclusive).To(Equal(10))
	g.Expect(v.Due).To(Equal(at(11)))
	g.Expect(v.Reason).To(ContainSubstring("0 of 3 conclusive measurements so far"))
	g.Expect(v.Reason).To(ContainSubstring("waiting, the last measurement was Inconclusive"))

	v = Judge(spec, start, tally(measured(at(1), P), measured(at(2), I), measured(at(3), P), measured(at(4), P)))
	g.Expect(v.Outcome).To(Equal(P), "three conclusive passes, the inconclusive one not counted")
	g.Expect([]int{v.Passed, v.Failed, v.Inconclusive}).To(Equal([]int{3, 0, 1}))

	// Counts outlive the measurements kept: 10 inconclusive, then 4 kept.
	long := tally(ms...)
	g.Expect(long.Recent).To(HaveLen(5))
	long.Add(measured(at(11), P), 5)
	g.Expect(long.Recent).To(HaveLen(5))
	g.Expect(long.Inconclusive).To(Equal(10))
	g.Expect(Judge(spec, start, long).Due).To(Equal(at(12)), "due one interval after the latest")
}

func TestMeetsComparesWithEachOperatorAndRefusesANonNumber(t *testing.T) {
	g := NewWithT(t)
	cases := []struct {
		op    cafev1alpha1.ThresholdOperator
		value float64
		want  bool
	}{
		{cafev1alpha1.ThresholdAtLeast, 0.99, true},
		{cafev1alpha1.ThresholdAtLeast, 0.98, false},
		{cafev1alpha1.ThresholdAtMost, 0.99, true},
		{cafev1alpha1.ThresholdAtMost, 1, false},
		{cafev1alpha1.ThresholdGreaterThan, 0.99, false},
		{cafev1alpha1.ThresholdGreaterThan, 1, true},
		{cafev1alpha1.ThresholdLessThan, 0.99, false},
		{cafev1alpha1.ThresholdLessThan, 0.5, true},
	}
	for _, c := range cases {
		got, err := Meets(c.value, cafev1alpha1.TrafficThreshold{Operator: c.op, Value: "0.99"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(c.want), "%v %s 0.99", c.value, c.op)
	}
	_, err := Meets(1, cafev1alpha1.TrafficThreshold{Operator: cafev1alpha1.ThresholdAtLeast, Value: "ninety"})
	g.Expect(err).To(MatchError(ErrBadThreshold))
}

func TestRenderReplacesEveryPlaceholder(t *testing.T) {
	g := NewWithT(t)
	q := `sum(rate(x{service=~"$namespace-$canary-.*"}[30s])) / sum(rate(x{service=~"$namespace-$stable-.*"}[30s]))`
	g.Expect(Render(q, Vars{Namespace: "shop", Canary: "cart-canary", Stable: "cart-stable"})).To(Equal(
		`sum(rate(x{service=~"shop-cart-canary-.*"}[30s])) / sum(rate(x{service=~"shop-cart-stable-.*"}[30s]))`))
}
