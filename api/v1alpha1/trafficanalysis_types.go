package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Placeholders a TrafficAnalysis query may use; CAFE replaces them before it
// sends the query to Prometheus, so one analysis serves every app.
const (
	// QueryVarNamespace is replaced by the namespace of the release.
	QueryVarNamespace = "$namespace"
	// QueryVarCanary is replaced by the name of the Service that selects
	// the pods of the step's new version (the canary).
	QueryVarCanary = "$canary"
	// QueryVarStable is replaced by the name of the Service that selects
	// the pods of the version being replaced (the stable pods).
	QueryVarStable = "$stable"
)

// ThresholdOperator compares a query's value with a threshold.
//
// +kubebuilder:validation:Enum=AtLeast;AtMost;GreaterThan;LessThan
type ThresholdOperator string

const (
	// ThresholdAtLeast passes a value ≥ the threshold (a success rate).
	ThresholdAtLeast ThresholdOperator = "AtLeast"
	// ThresholdAtMost passes a value ≤ the threshold (a latency, an error
	// rate, a canary-to-stable ratio).
	ThresholdAtMost ThresholdOperator = "AtMost"
	// ThresholdGreaterThan passes a value > the threshold.
	ThresholdGreaterThan ThresholdOperator = "GreaterThan"
	// ThresholdLessThan passes a value < the threshold.
	ThresholdLessThan ThresholdOperator = "LessThan"
)

// TrafficThreshold is what a query's value must satisfy for a measurement
// to pass.
type TrafficThreshold struct {
	// operator compares the value with the threshold: AtLeast, AtMost,
	// GreaterThan or LessThan.
	// +required
	Operator ThresholdOperator `json:"operator"`

	// value is the threshold, a decimal number such as "0.99", "250" or
	// "1.5e-3" (a string: Kubernetes APIs carry no floating-point numbers).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$')",message="must be a decimal number such as 0.99, 250 or 1.5e-3"
	Value string `json:"value"`
}

// TrafficMetric is one Prometheus query of an analysis and the threshold
// its value must meet.
type TrafficMetric struct {
	// name identifies the metric in measurements, events and the audit
	// trail, e.g. success-rate.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// query is a PromQL expression that evaluates to one number: a scalar,
	// or a vector of exactly one series. It may use $namespace, $canary and
	// $stable (the canary and stable Services' names), e.g.
	//
	//   (sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*",code!~"5.."}[30s])) or vector(0))
	//     / sum(rate(traefik_service_requests_total{service=~"$namespace-$canary-.*"}[30s]))
	//
	// CAFE's admission webhook asks Prometheus to parse it when Prometheus
	// answers, and refuses a query it cannot parse.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`

	// threshold is what the value must satisfy. A query that returns no
	// data (no series, or NaN as a ratio of zero requests gives) is
	// inconclusive, never a pass.
	// +required
	Threshold TrafficThreshold `json:"threshold"`
}

// TrafficAnalysisSpec is how to judge a release step's traffic: every
// intervalSeconds, CAFE evaluates every metric's query at once (one
// measurement); a measurement fails when any metric misses its threshold.
// The analysis fails as soon as more than failureLimit measurements failed,
// and passes once count measurements were conclusive without that.
// Inconclusive measurements (Prometheus unreachable, no data) count for
// neither: the release waits, saying why.
//
// +kubebuilder:validation:XValidation:rule="self.failureLimit < self.count",message="spec.failureLimit must be less than spec.count: an analysis that tolerates every measurement failing judges nothing"
type TrafficAnalysisSpec struct {
	// intervalSeconds is the time between two measurements, and before the
	// first (the traffic step must have run that long to be judged).
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	IntervalSeconds int32 `json:"intervalSeconds,omitempty"`

	// count is how many conclusive measurements pass the analysis.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Count int32 `json:"count,omitempty"`

	// failureLimit is how many failed measurements are tolerated; one more
	// fails the analysis at once.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99
	FailureLimit int32 `json:"failureLimit"`

	// metrics are the queries every measurement evaluates.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Metrics []TrafficMetric `json:"metrics"`
}

// TrafficAnalysis is a reusable judgement of a release step's traffic:
// Prometheus queries with thresholds (success rate, latency, any PromQL,
// the canary's against the stable pods'), an interval, a count and a
// failure limit. Traffic steps of a release name it; the measurements,
// their values and the verdict are recorded with the release.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ta
// +kubebuilder:printcolumn:name="Interval",type=integer,JSONPath=`.spec.intervalSeconds`
// +kubebuilder:printcolumn:name="Count",type=integer,JSONPath=`.spec.count`
// +kubebuilder:printcolumn:name="FailureLimit",type=integer,JSONPath=`.spec.failureLimit`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficAnalysis struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the analysis.
	// +required
	Spec TrafficAnalysisSpec `json:"spec,omitzero"`
}

// TrafficAnalysisList is a list of TrafficAnalyses.
//
// +kubebuilder:object:root=true
type TrafficAnalysisList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the analyses.
	Items []TrafficAnalysis `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &TrafficAnalysis{}, &TrafficAnalysisList{})
}

// AnalysisOutcome is the outcome of one measurement of a TrafficAnalysis,
// or of one of its metrics.
//
// +kubebuilder:validation:Enum=Passed;Failed;Inconclusive
type AnalysisOutcome string

const (
	// AnalysisPassed: every value met its threshold.
	AnalysisPassed AnalysisOutcome = "Passed"
	// AnalysisFailed: a value missed its threshold.
	AnalysisFailed AnalysisOutcome = "Failed"
	// AnalysisInconclusive: a value could not be had (Prometheus
	// unreachable, no data, a query that does not give one number); it
	// counts neither way.
	AnalysisInconclusive AnalysisOutcome = "Inconclusive"
)
