package analysis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Vars are the values of a query's placeholders for one release step.
type Vars struct {
	Namespace string
	// Canary and Stable name the Services of the step's new pods and of the
	// pods they replace.
	Canary, Stable string
}

// Render replaces the placeholders of query ($namespace, $canary,
// $stable). Longer names first, so that no placeholder is read as the
// prefix of another.
func Render(query string, v Vars) string {
	return strings.NewReplacer(
		cafev1alpha1.QueryVarNamespace, v.Namespace,
		cafev1alpha1.QueryVarCanary, v.Canary,
		cafev1alpha1.QueryVarStable, v.Stable,
	).Replace(query)
}

// MetricValue is one metric's part of a measurement.
type MetricValue struct {
	Name string
	// Query is the query as sent (placeholders replaced).
	Query string
	// Value is the number Prometheus gave, formatted; empty when none.
	Value   string
	Outcome cafev1alpha1.AnalysisOutcome
	// Message says why, in words: the comparison made, or why no value.
	Message string
}

// Measurement is one evaluation of every metric of an analysis.
type Measurement struct {
	At      time.Time
	Outcome cafev1alpha1.AnalysisOutcome
	Metrics []MetricValue
}

// Summary is the measurement in one line, naming the metrics that decided
// its outcome and their values, for events and conditions.
func (m Measurement) Summary() string {
	var parts []string
	for _, v := range m.Metrics {
		if v.Outcome == m.Outcome {
			parts = append(parts, v.Name+": "+v.Message)
		}
	}
	return string(m.Outcome) + ": " + strings.Join(parts, "; ")
}

// Measure evaluates every metric of spec at the given time. The
// measurement fails when any metric missed its threshold; otherwise it is
// inconclusive when any metric had no value, and passes when all met
// theirs.
func Measure(ctx context.Context, p Prometheus, spec *cafev1alpha1.TrafficAnalysisSpec, vars Vars, at time.Time) Measurement {
	m := Measurement{At: at, Outcome: cafev1alpha1.AnalysisPassed}
	for _, metric := range spec.Metrics {
		v := measureMetric(ctx, p, metric, vars, at)
		m.Metrics = append(m.Metrics, v)
		switch {
		case v.Outcome == cafev1alpha1.AnalysisFailed:
			m.Outcome = cafev1alpha1.AnalysisFailed
		case v.Outcome == cafev1alpha1.AnalysisInconclusive && m.Outcome == cafev1alpha1.AnalysisPassed:
			m.Outcome = cafev1alpha1.AnalysisInconclusive
		}
	}
	return m
}

func measureMetric(ctx context.Context, p Prometheus, metric cafev1alpha1.TrafficMetric, vars Vars, at time.Time) MetricValue {
	v := MetricValue{Name: metric.Name, Query: Render(metric.Query, vars)}
	value, err := p.Value(ctx, v.Query, at)
	if err != nil {
		v.Outcome, v.Message = cafev1alpha1.AnalysisInconclusive, err.Error()
		return v
	}
	v.Value = strconv.FormatFloat(value, 'g', 6, 64)
	met, err := Meets(value, metric.Threshold)
	switch {
	case err != nil:
		v.Outcome, v.Message = cafev1alpha1.AnalysisInconclusive, err.Error()
	case met:
		v.Outcome, v.Message = cafev1alpha1.AnalysisPassed, fmt.Sprintf("%s, %s %s", v.Value, phrase(metric.Threshold.Operator, true), metric.Threshold.Value)
	default:
		v.Outcome, v.Message = cafev1alpha1.AnalysisFailed, fmt.Sprintf("%s, %s %s", v.Value, phrase(metric.Threshold.Operator, false), metric.Threshold.Value)
	}
	return v
}

// ErrBadThreshold: the threshold is not a number (the CRD refuses such a
// value; one written before that rule is inconclusive, never a pass).
var ErrBadThreshold = errors.New("the threshold is not a number")

// Meets reports whether value satisfies the threshold.
func Meets(value float64, t cafev1alpha1.TrafficThreshold) (bool, error) {
	limit, err := strconv.ParseFloat(t.Value, 64)
	if err != nil {
		return false, fmt.Errorf("%w: %q", ErrBadThreshold, t.Value)
	}
	switch t.Operator {
	case cafev1alpha1.ThresholdAtLeast:
		return value >= limit, nil
	case cafev1alpha1.ThresholdAtMost:
		return value <= limit, nil
	case cafev1alpha1.ThresholdGreaterThan:
		return value > limit, nil
	case cafev1alpha1.ThresholdLessThan:
		return value < limit, nil
	}
	return false, fmt.Errorf("%w: unknown operator %q", ErrBadThreshold, t.Operator)
}

// phrase words the comparison: "at least", "not at least", ….
func phrase(op cafev1alpha1.ThresholdOperator, held bool) string {
	words := map[cafev1alpha1.ThresholdOperator]string{
		cafev1alpha1.ThresholdAtLeast:     "at least",
		cafev1alpha1.ThresholdAtMost:      "at most",
		cafev1alpha1.ThresholdGreaterThan: "greater than",
		cafev1alpha1.ThresholdLessThan:    "less than",
	}[op]
	if held {
		return words
	}
	return "not " + words
}
