package cafedeployment

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/analysis"
)

// +kubebuilder:rbac:groups=cafe.io,resources=trafficanalyses,verbs=get;list;watch

// keptMeasurements is how many measurements a step's record keeps.
const keptMeasurements = 20

// maxVerdictReason bounds the recorded reason (the CRD's maxLength).
const maxVerdictReason = 4096

// analyse runs the step's analysis: it takes the measurement that is due,
// records it, and records the verdict once decided. It returns when the
// next measurement is due (0 once decided); an error says why the analysis
// cannot run (no such TrafficAnalysis, no Prometheus), and the step waits.
func (r *Reconciler) analyse(ctx context.Context, cd *cafev1alpha1.CafeDeployment, st *cafev1alpha1.TrafficStepStatus, step *cafev1alpha1.TrafficStep) (time.Duration, error) {
	if st.Verdict != "" || st.StartTime == nil {
		return 0, nil
	}
	ta := &cafev1alpha1.TrafficAnalysis{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: step.Analysis.Name}, ta); err != nil {
		return 0, fmt.Errorf("spec.strategy.traffic.steps[group %d].analysis: reading TrafficAnalysis %s: %w", step.Group, step.Analysis.Name, err)
	}
	if r.Prometheus == nil {
		return 0, fmt.Errorf("TrafficAnalysis %s cannot run: CAFE runs without a Prometheus (cafe manager --prometheus-url)", ta.Name)
	}
	tally := tallyOf(st)
	now := r.Now()
	v := analysis.Judge(&ta.Spec, st.StartTime.Time, tally)
	if v.Outcome == "" && !now.Before(v.Due) {
		t := cd.Spec.Strategy.Traffic
		m := analysis.Measure(ctx, *r.Prometheus, &ta.Spec, analysis.Vars{Namespace: cd.Namespace, Canary: t.CanaryService(), Stable: t.StableService()}, now)
		tally.Add(m, keptMeasurements)
		recordTally(st, tally)
		v = analysis.Judge(&ta.Spec, st.StartTime.Time, tally)
	}
	st.Verdict, st.VerdictReason = v.Outcome, truncate(v.Reason, maxVerdictReason)
	switch v.Outcome {
	case cafev1alpha1.AnalysisFailed:
		r.Recorder.Eventf(cd, ta, corev1.EventTypeWarning, "AnalysisFailed", "Analyse", "TrafficAnalysis %s failed at group %d: %s", ta.Name, step.Group, st.VerdictReason)
	case cafev1alpha1.AnalysisPassed:
		r.Recorder.Eventf(cd, ta, corev1.EventTypeNormal, "AnalysisPassed", "Analyse", "TrafficAnalysis %s passed at group %d: %s", ta.Name, step.Group, st.VerdictReason)
	default:
		return max(v.Due.Sub(now), 100*time.Millisecond), nil
	}
	return 0, nil
}

// tallyOf reads a step's recorded measurements back.
func tallyOf(st *cafev1alpha1.TrafficStepStatus) analysis.Tally {
	t := analysis.Tally{Passed: int(st.Passed), Failed: int(st.Failed), Inconclusive: int(st.Inconclusive)}
	for _, m := range st.Measurements {
		am := analysis.Measurement{At: m.Time.Time, Outcome: m.Outcome}
		for _, v := range m.Metrics {
			am.Metrics = append(am.Metrics, analysis.MetricValue{Name: v.Name, Query: v.Query, Value: v.Value, Outcome: v.Outcome, Message: v.Message})
		}
		t.Recent = append(t.Recent, am)
	}
	return t
}

// recordTally writes a tally into a step's record.
func recordTally(st *cafev1alpha1.TrafficStepStatus, t analysis.Tally) {
	st.Passed, st.Failed, st.Inconclusive = int32(t.Passed), int32(t.Failed), int32(t.Inconclusive)
	st.Measurements = st.Measurements[:0]
	for _, m := range t.Recent {
		rec := cafev1alpha1.TrafficMeasurement{Time: metav1.NewTime(m.At), Outcome: m.Outcome}
		for _, v := range m.Metrics {
			rec.Metrics = append(rec.Metrics, cafev1alpha1.TrafficMetricValue{
				Name: v.Name, Query: truncate(v.Query, 8192), Value: truncate(v.Value, 64), Outcome: v.Outcome, Message: truncate(v.Message, 1024),
			})
		}
		st.Measurements = append(st.Measurements, rec)
	}
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// override is a person's override of a step's analysis, stamped by CAFE's
// admission webhook with the authenticated user.
type override struct {
	confirmation
	Reason string
}

// overrideOf reads the stamped override, nil without one (or with one the
// webhook cannot have stamped, its time included).
func overrideOf(cd *cafev1alpha1.CafeDeployment) *override {
	a := cd.Annotations
	c, timed := stampedGroupAction(a, cafev1alpha1.OverrideAnalysisGroupAnnotation, cafev1alpha1.AnalysisOverriddenByAnnotation, cafev1alpha1.AnalysisOverriddenAtAnnotation)
	if c == nil || !timed {
		return nil
	}
	return &override{confirmation: *c, Reason: a[cafev1alpha1.OverrideAnalysisReasonAnnotation]}
}

// applyOverride records a person's override of the current group's
// analysis, given once its step began: the verdict becomes Passed, with who,
// when and why. An override given before the step began was given without
// seeing it and does not count.
func (r *Reconciler) applyOverride(cd *cafev1alpha1.CafeDeployment) {
	o, rel := overrideOf(cd), &cd.Status.Release
	if o == nil || rel.CurrentGroup == nil || o.Group != *rel.CurrentGroup {
		return
	}
	for i := range rel.Groups {
		g := &rel.Groups[i]
		st := g.Traffic
		if g.Index != o.Group || st == nil || st.StartTime == nil || st.OverriddenBy != "" || o.At.Before(st.StartTime) {
			continue
		}
		was := string(st.Verdict)
		if was == "" {
			was = "no verdict yet"
		}
		st.Verdict = cafev1alpha1.AnalysisPassed
		st.OverriddenBy, st.OverriddenAt, st.OverrideReason = o.User, ptr.To(o.At), truncate(o.Reason, 1024)
		st.VerdictReason = truncate(fmt.Sprintf("overridden by %s: %s (the analysis: %s, %s)", o.User, o.Reason, was, st.VerdictReason), maxVerdictReason)
		r.Recorder.Eventf(cd, nil, corev1.EventTypeNormal, "AnalysisOverridden", "Override", "%s overrode the analysis of group %d (%s): %s", o.User, o.Group, was, o.Reason)
	}
}
