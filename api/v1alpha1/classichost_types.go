package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClassicHostLeaseNamespace holds the classic hosts' heartbeat Leases, one
// per host and named after it, the way kube-node-lease holds the nodes'.
const ClassicHostLeaseNamespace = "cafe-host-lease"

// ClassicHostUserPrefix starts the user name of every host agent's
// credential ("cafe:host:<host name>"); ClassicHostsGroup is their group.
// Admission lets such a user write only the host named by the rest of its
// user name, its Lease and its instances (config/rbac/classic_host_policy.yaml).
const (
	ClassicHostUserPrefix = "cafe:host:"
	ClassicHostsGroup     = "cafe:hosts"
)

// ClassicHostUser is the user name of host's agent credential.
func ClassicHostUser(host string) string { return ClassicHostUserPrefix + host }

// Condition types of a ClassicHost.
const (
	// ClassicHostReadyCondition is True while the host's agent heartbeats
	// (its Lease renewed within the host lifecycle's stale bound), Unknown
	// once the heartbeats stop, written by CAFE's controller.
	ClassicHostReadyCondition = "Ready"
	// ClassicHostAgentReadyCondition is the agent's own statement that it
	// can run instances (its work directory and process supervisor are
	// usable), written by the agent.
	ClassicHostAgentReadyCondition = "AgentReady"
	// ClassicHostReachableCondition is whether CAFE reaches the agent's
	// endpoint at the host's address (the path the host's instances serve
	// on): True while it answers, Unknown while it has failed for less
	// than the unreachable bound, False after. Written by CAFE's
	// controller; a False one makes the host not Ready.
	ClassicHostReachableCondition = "Reachable"
	// ClassicHostHealthyCondition carries CAFE's node lifecycle verdict on
	// the host, judged like a node's (docs/node-lifecycle.md): True
	// (Healthy) or False with reason Suspect or Failed; the message lists
	// the evidence. Written by CAFE's node lifecycle controller.
	ClassicHostHealthyCondition = "Healthy"
	// ClassicHostSchedulableCondition is False while the node lifecycle
	// controller cordons the host (a Suspect or Failed verdict in Enforce
	// mode): no new instance is placed there, as a node's cafe.io/unhealthy
	// NoSchedule taint keeps pods off. spec.unschedulable stays the
	// administrator's.
	ClassicHostSchedulableCondition = "Schedulable"
)

// Reasons of the Schedulable condition (the Healthy condition's reasons
// are the NodeVerdicts).
const (
	ClassicHostReasonSchedulable = "Schedulable"
	ClassicHostReasonCordoned    = "CordonedUnhealthy"
)

// Reasons of the Ready condition.
const (
	ClassicHostReasonHeartbeating     = "Heartbeating"
	ClassicHostReasonHeartbeatStale   = "HeartbeatStale"
	ClassicHostReasonNeverHeartbeated = "NeverHeartbeated"
	ClassicHostReasonAgentNotReady    = "AgentNotReady"
	ClassicHostReasonUnreachable      = "HostUnreachable"
)

// Reasons of the Reachable condition.
const (
	ClassicHostReasonAnswering    = "Answering"
	ClassicHostReasonProbeFailing = "ProbeFailing"
	ClassicHostReasonNoEndpoint   = "NoAgentEndpoint"
)

// ClassicHostAgentEndpoint is where the agent answers health checks.
type ClassicHostAgentEndpoint struct {
	// port is the TCP port of the agent's health endpoint
	// (http://<spec.address>:<port>/healthz).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// ClassicHostCapacity is what a host offers to classic instances.
type ClassicHostCapacity struct {
	// instances is how many classic instances the host runs at most.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Instances int32 `json:"instances,omitempty"`
}

// ClassicHostSpec is where a classic host is and what it offers. Its agent
// creates it when the host first registers; an administrator may cordon it.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cell) || has(self.cell)",message="spec.cell cannot be removed once set"
type ClassicHostSpec struct {
	// zone is the failure domain the host is in (a data centre or zone),
	// the value a CafeAppService unit's topology names; it cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.zone is immutable"
	Zone string `json:"zone"`

	// cell is the unit (cell) of a cell architecture the host belongs to,
	// if any; it cannot change once set.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cell is immutable"
	Cell string `json:"cell,omitempty"`

	// address is the IP address the host's instances serve on.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="spec.address must be an IPv4 or IPv6 address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !ip(self).isUnspecified()",message="spec.address must not be the unspecified address"
	Address string `json:"address"`

	// capacity is what the host offers.
	// +optional
	// +kubebuilder:default={}
	Capacity ClassicHostCapacity `json:"capacity,omitzero"`

	// unschedulable keeps new instances off the host (cordon); running
	// ones stay.
	// +optional
	Unschedulable bool `json:"unschedulable,omitempty"`
}

// ClassicHostStatus is what the agent and CAFE observe of the host.
type ClassicHostStatus struct {
	// observedGeneration is the generation the conditions were computed
	// for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// agentVersion is the version of the cafe agent running on the host.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	AgentVersion string `json:"agentVersion,omitempty"`

	// agentEndpoint is where the agent answers health checks on the
	// host's address, written by the agent (as a kubelet writes its
	// node's daemonEndpoints).
	// +optional
	AgentEndpoint *ClassicHostAgentEndpoint `json:"agentEndpoint,omitempty"`

	// reservedPorts are the TCP ports the agent itself listens on at the
	// host's address (its health endpoint, the registry relay), written by
	// the agent: no instance is placed on the host with one of them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	ReservedPorts []int32 `json:"reservedPorts,omitempty"`

	// conditions: Ready (heartbeats and reachability, written by CAFE),
	// Reachable (written by CAFE) and AgentReady (written by the agent).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ClassicHost is a classic (virtual or physical) machine that runs apps as
// processes from packages, managed by the cafe agent running on it. The
// agent registers the host, heartbeats through a Lease in cafe-host-lease
// and may write nothing but its own host, Lease and instances.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=chost
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.spec.zone`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.status.agentVersion`
// +kubebuilder:printcolumn:name="Cell",type=string,JSONPath=`.spec.cell`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClassicHost struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is where the host is and what it offers.
	// +required
	Spec ClassicHostSpec `json:"spec,omitzero"`

	// status is what the agent and CAFE observe.
	// +optional
	Status ClassicHostStatus `json:"status,omitzero"`
}

// ClassicHostList is a list of ClassicHosts.
//
// +kubebuilder:object:root=true
type ClassicHostList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the hosts.
	Items []ClassicHost `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ClassicHost{}, &ClassicHostList{})
}
