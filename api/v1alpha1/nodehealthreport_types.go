package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeHealthReportMaxLifetime is how long a report counts after its last
// write: CAFE's admission webhook shortens spec.until to at most this long
// after each write, and a report without spec.until (written where the
// webhook does not run) expires this long after its creation. A monitoring
// system that still sees the problem writes the report again.
const NodeHealthReportMaxLifetime = time.Hour

// NodeHealthReportState is what a monitoring system says about a node.
//
// +kubebuilder:validation:Enum=Unhealthy;Healthy
type NodeHealthReportState string

const (
	// NodeReportUnhealthy: the node is unhealthy (a bad signal while the
	// report has not expired).
	NodeReportUnhealthy NodeHealthReportState = "Unhealthy"
	// NodeReportHealthy: the source withdraws its complaint; the report is
	// kept for the record and counts for nothing.
	NodeReportHealthy NodeHealthReportState = "Healthy"
)

// NodeHealthReportSpec is one monitoring system's statement about one node
// (or classic host): "node X: unhealthy, source Y, reason Z, until T".
//
// +kubebuilder:validation:XValidation:rule="has(self.nodeName) != has(self.hostName)",message="exactly one of spec.nodeName and spec.hostName must be set"
// +kubebuilder:validation:XValidation:rule="has(self.nodeName) == has(oldSelf.nodeName) && has(self.hostName) == has(oldSelf.hostName)",message="a report cannot move between a node and a classic host"
type NodeHealthReportSpec struct {
	// nodeName is the node the report is about; it must exist. Exactly one
	// of nodeName and hostName is set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.nodeName is immutable"
	NodeName string `json:"nodeName,omitempty"`

	// hostName is the ClassicHost the report is about; it must exist.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.hostName is immutable"
	HostName string `json:"hostName,omitempty"`

	// source names the monitoring system that reports, e.g. "zabbix" or
	// "netprobe-dc1".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Source string `json:"source"`

	// state: Unhealthy or Healthy.
	// +optional
	// +kubebuilder:default=Unhealthy
	State NodeHealthReportState `json:"state,omitempty"`

	// reason is a CamelCase word, e.g. DiskLatency.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_]*$`
	Reason string `json:"reason"`

	// message is a human-readable explanation.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// until is when the report expires: at most an hour
	// (NodeHealthReportMaxLifetime) after the report's last write; CAFE's
	// admission webhook sets an absent or later one to that.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`

	// reportedBy is the user the API server authenticated for the last
	// write of the report, stamped by CAFE's admission webhook (what a
	// writer sets here is replaced).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	ReportedBy string `json:"reportedBy,omitempty"`

	// stateSince is when state last changed (or the report was created),
	// stamped by CAFE's admission webhook: a report that turns Unhealthy
	// counts towards forSeconds from then, not from its creation.
	// +optional
	StateSince *metav1.Time `json:"stateSince,omitempty"`
}

// NodeHealthReport is an external health report on a node, written by a
// monitoring system; an unexpired Unhealthy report is the ExternalReport
// signal of CAFE's node lifecycle controller. Reports about a node that
// does not exist are refused (admission webhook).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=nhr
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.hostName`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.source`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name="Until",type=date,JSONPath=`.spec.until`
// +kubebuilder:printcolumn:name="ReportedBy",type=string,JSONPath=`.spec.reportedBy`,priority=1
type NodeHealthReport struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the report.
	// +required
	Spec NodeHealthReportSpec `json:"spec,omitzero"`
}

// NodeHealthReportList is a list of NodeHealthReports.
//
// +kubebuilder:object:root=true
type NodeHealthReportList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the reports.
	Items []NodeHealthReport `json:"items"`
}

// ActiveAt reports whether the report is an unexpired Unhealthy statement.
func (r *NodeHealthReport) ActiveAt(now metav1.Time) bool {
	return r.Spec.State != NodeReportHealthy && now.Time.Before(r.ExpiresAt())
}

// ExpiresAt is when the report stops counting: spec.until, or, without
// one, NodeHealthReportMaxLifetime after its creation.
func (r *NodeHealthReport) ExpiresAt() time.Time {
	if r.Spec.Until != nil {
		return r.Spec.Until.Time
	}
	return r.CreationTimestamp.Add(NodeHealthReportMaxLifetime)
}

// UnhealthySince is when the report's current state began: the stamped
// spec.stateSince, never before the report's creation (which the API
// server sets).
func (r *NodeHealthReport) UnhealthySince() time.Time {
	if r.Spec.StateSince != nil && r.Spec.StateSince.After(r.CreationTimestamp.Time) {
		return r.Spec.StateSince.Time
	}
	return r.CreationTimestamp.Time
}

func init() {
	objectTypes = append(objectTypes, &NodeHealthReport{}, &NodeHealthReportList{})
}
