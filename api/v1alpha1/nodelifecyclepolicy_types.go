package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeLifecyclePolicyName is the name of the one policy CAFE's node
// lifecycle controller reads. The controller creates it with the defaults
// when it is missing.
const NodeLifecyclePolicyName = "default"

// Node lifecycle taints, node condition and annotations.
const (
	// UnhealthyTaintKey is the taint CAFE puts on a Suspect or Failed node:
	// with effect NoSchedule (cordon) from Suspect on, and with effect
	// NoExecute on a Failed node once its CAFE-managed pods have been
	// migrated (pods of other owners are then evicted as their tolerations
	// allow).
	UnhealthyTaintKey = "cafe.io/unhealthy"

	// NodeHealthyCondition is the node condition carrying CAFE's verdict:
	// True (Healthy) or False with reason Suspect or Failed; the message
	// lists the evidence.
	NodeHealthyCondition = "cafe.io/NodeHealthy"

	// MigrationRequestedAnnotation on a pod asks its InPlaceSet to migrate
	// it: create a replacement first, then drain and delete the pod once the
	// set has its replicas available without it. The value says who asked
	// and when (RFC 3339), e.g. "nodelifecycle 2026-08-01T10:00:00Z node-a-0 Failed".
	MigrationRequestedAnnotation = "cafe.io/migration-requested"

	// UnhealthySinceAnnotation on a node is when CAFE's verdict last turned
	// from Healthy to Suspect or Failed (RFC 3339); CAFE removes it when the
	// node is Healthy again. The zone guard counts the nodes that turned
	// unhealthy within its window from it.
	UnhealthySinceAnnotation = "cafe.io/unhealthy-since"
)

// Verdicts of the node lifecycle controller (the reasons of the
// cafe.io/NodeHealthy condition).
type NodeVerdict string

const (
	// NodeVerdictHealthy: not enough bad signals for long enough.
	NodeVerdictHealthy NodeVerdict = "Healthy"
	// NodeVerdictSuspect: spec.suspect.minSignals signals have agreed for
	// spec.suspect.forSeconds; the node is cordoned.
	NodeVerdictSuspect NodeVerdict = "Suspect"
	// NodeVerdictFailed: spec.failed.minSignals signals have agreed for
	// spec.failed.forSeconds; its pods are migrated.
	NodeVerdictFailed NodeVerdict = "Failed"
)

// NodeSignal names a source of evidence about a node.
//
// +kubebuilder:validation:Enum=Ready;Lease;NodeConditions;ExternalReport;KubeletProbe
type NodeSignal string

const (
	// SignalReady: the node's Ready condition is not True.
	SignalReady NodeSignal = "Ready"
	// SignalLease: the node's Lease (kube-node-lease) was not renewed for
	// spec.leaseStaleSeconds.
	SignalLease NodeSignal = "Lease"
	// SignalNodeConditions: a condition listed in spec.nodeConditions has
	// its bad status (node-problem-detector and other monitors set them).
	SignalNodeConditions NodeSignal = "NodeConditions"
	// SignalExternalReport: an unexpired NodeHealthReport says the node is
	// unhealthy.
	SignalExternalReport NodeSignal = "ExternalReport"
	// SignalKubeletProbe: CAFE's probe of the kubelet endpoint failed
	// spec.probe.failureThreshold times in a row.
	SignalKubeletProbe NodeSignal = "KubeletProbe"
)

// AllNodeSignals lists every signal, in the order evidence is reported.
var AllNodeSignals = []NodeSignal{SignalReady, SignalLease, SignalNodeConditions, SignalExternalReport, SignalKubeletProbe}

// NodeLifecycleMode says whether the controller acts.
//
// +kubebuilder:validation:Enum=Enforce;Observe
type NodeLifecycleMode string

const (
	// NodeLifecycleEnforce: verdicts, taints and migrations.
	NodeLifecycleEnforce NodeLifecycleMode = "Enforce"
	// NodeLifecycleObserve: verdicts (node condition, events, metrics)
	// only; no taint, no migration. For trying a policy out.
	NodeLifecycleObserve NodeLifecycleMode = "Observe"
)

// FreshLeaseMigration says whether a Failed node whose Lease is still
// fresh may be migrated.
//
// +kubebuilder:validation:Enum=Never;WithExternalReport
type FreshLeaseMigration string

const (
	// FreshLeaseNever: a node that renews its Lease is never migrated,
	// whatever the other signals say (it is cordoned only).
	FreshLeaseNever FreshLeaseMigration = "Never"
	// FreshLeaseWithExternalReport: a Failed node with a fresh Lease is
	// migrated when an external report is among its evidence.
	FreshLeaseWithExternalReport FreshLeaseMigration = "WithExternalReport"
)

// NodeLifecyclePolicy condition types and reasons.
const (
	// NodeLifecycleZoneGuardCondition is True while the zone guard holds
	// migrations in at least one zone; the message names the zones.
	NodeLifecycleZoneGuardCondition = "ZoneGuard"
	// NodeLifecycleZoneGuardTrippedReason: too large a share of a zone's
	// nodes is Suspect or Failed.
	NodeLifecycleZoneGuardTrippedReason = "Tripped"
	// NodeLifecycleZoneGuardClearReason: no zone is guarded.
	NodeLifecycleZoneGuardClearReason = "Clear"
)

// BadNodeCondition is a node condition that is a bad signal when it has
// the given status.
type BadNodeCondition struct {
	// type is the node condition type, e.g. KernelDeadlock.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	Type string `json:"type"`
	// status is the bad status of the condition.
	// +optional
	// +kubebuilder:default="True"
	// +kubebuilder:validation:Enum=True;False;Unknown
	Status string `json:"status,omitempty"`
}

// VerdictThreshold says how many distinct signals must be bad at the same
// time, and for how long, for a verdict.
type VerdictThreshold struct {
	// minSignals is how many distinct signals must agree.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	MinSignals int32 `json:"minSignals"`
	// forSeconds is how long they must have agreed.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	ForSeconds int32 `json:"forSeconds"`
}

// KubeletProbeSpec configures the active probe of the kubelet endpoint
// (GET https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/healthz;
// any HTTP answer, even 401, means the kubelet answers).
type KubeletProbeSpec struct {
	// periodSeconds is how often each node is probed.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=300
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`
	// timeoutSeconds bounds one probe.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// failureThreshold is how many probes in a row must fail for the signal
	// to be bad.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// MigrationSpec limits what a Failed verdict does.
type MigrationSpec struct {
	// maxPodsPerMinute is the global rate limit: at most this many pod
	// migrations start in any 60 seconds, over all nodes.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxPodsPerMinute int32 `json:"maxPodsPerMinute,omitempty"`
	// maxNewTaintsPerMinute is the global rate limit of CAFE's taints: at
	// most this many cafe.io/unhealthy taints (a cordon, NoSchedule, or a
	// NoExecute) are added in any 60 seconds, over all nodes, so that
	// reports against many nodes cannot cordon a cluster at once.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxNewTaintsPerMinute int32 `json:"maxNewTaintsPerMinute,omitempty"`
	// freshLease says whether a node whose Lease is fresh may be migrated.
	// +optional
	// +kubebuilder:default=Never
	FreshLease FreshLeaseMigration `json:"freshLease,omitempty"`
	// otherPodsAfterSeconds is how long after the Failed verdict (and after
	// its CAFE-managed pods are migrated) the node gets the
	// cafe.io/unhealthy:NoExecute taint that evicts the pods of other
	// owners; a pod tolerating it with tolerationSeconds stays that much
	// longer.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	OtherPodsAfterSeconds int32 `json:"otherPodsAfterSeconds"`
}

// ZoneGuardSpec protects a zone from a stampede of migrations.
type ZoneGuardSpec struct {
	// maxUnhealthyPercent: when more than this share of a zone's nodes is
	// Suspect or Failed (however long ago each turned so), CAFE assumes a
	// partition or a monitoring fault and neither migrates nor taints
	// anything more in that zone, until no more than this share of its
	// nodes is Suspect or Failed.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxUnhealthyPercent int32 `json:"maxUnhealthyPercent"`
	// windowSeconds is the window of status.zones[].recentlyUnhealthy (the
	// nodes that turned bad within it), reported for operators. It no
	// longer limits which nodes trip the guard: counting only recent ones
	// let reports turn a zone bad a few nodes per window.
	// +optional
	// +kubebuilder:default=120
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	WindowSeconds int32 `json:"windowSeconds,omitempty"`
}

// NodeLifecyclePolicySpec is how CAFE judges nodes and what it does about
// a failed one.
//
// +kubebuilder:validation:XValidation:rule="self.failed.minSignals >= self.suspect.minSignals",message="spec.failed.minSignals must be at least spec.suspect.minSignals",fieldPath=".failed.minSignals"
// +kubebuilder:validation:XValidation:rule="self.failed.minSignals <= size(self.signals)",message="spec.failed.minSignals cannot exceed the number of signals in spec.signals",fieldPath=".failed.minSignals"
// +kubebuilder:validation:XValidation:rule="self.suspect.minSignals <= size(self.signals)",message="spec.suspect.minSignals cannot exceed the number of signals in spec.signals",fieldPath=".suspect.minSignals"
type NodeLifecyclePolicySpec struct {
	// mode: Enforce (taints and migrations) or Observe (verdicts only).
	// +optional
	// +kubebuilder:default=Enforce
	Mode NodeLifecycleMode `json:"mode,omitempty"`

	// signals lists the signals the verdict counts.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:default={Ready,Lease,NodeConditions,ExternalReport,KubeletProbe}
	Signals []NodeSignal `json:"signals,omitempty"`

	// leaseStaleSeconds: a Lease not renewed for this long is a bad signal
	// (kubelets renew every 10 seconds by default), and a Lease renewed
	// more recently is fresh (see migration.freshLease).
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=3600
	LeaseStaleSeconds int32 `json:"leaseStaleSeconds,omitempty"`

	// nodeConditions are the node conditions that count as the
	// NodeConditions signal.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:default={{type:KernelDeadlock,status:"True"},{type:ReadonlyFilesystem,status:"True"},{type:NetworkUnavailable,status:"True"}}
	NodeConditions []BadNodeCondition `json:"nodeConditions,omitempty"`

	// probe configures the KubeletProbe signal.
	// +optional
	// +kubebuilder:default={}
	Probe KubeletProbeSpec `json:"probe,omitzero"`

	// suspect: when a node is cordoned.
	// +optional
	// +kubebuilder:default={minSignals:1,forSeconds:10}
	Suspect VerdictThreshold `json:"suspect,omitzero"`

	// failed: when a node's pods are migrated.
	// +optional
	// +kubebuilder:default={minSignals:2,forSeconds:10}
	Failed VerdictThreshold `json:"failed,omitzero"`

	// recoverySeconds: a Suspect or Failed node with no bad signal for this
	// long is Healthy again and uncordoned.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	RecoverySeconds int32 `json:"recoverySeconds"`

	// migration limits what a Failed verdict does.
	// +optional
	// +kubebuilder:default={}
	Migration MigrationSpec `json:"migration,omitzero"`

	// zoneGuard protects a zone from a stampede.
	// +optional
	// +kubebuilder:default={}
	ZoneGuard ZoneGuardSpec `json:"zoneGuard,omitzero"`
}

// ZoneHealth is the state of one zone.
type ZoneHealth struct {
	// name is the zone (topology.kubernetes.io/zone; "" for nodes without one).
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// nodes is how many nodes the zone has.
	// +required
	Nodes int32 `json:"nodes"`
	// hosts is how many classic hosts the zone has; the zone guard counts
	// them with the nodes.
	// +optional
	Hosts int32 `json:"hosts,omitempty"`
	// unhealthy is how many of them (nodes and hosts) are Suspect or Failed.
	// +required
	Unhealthy int32 `json:"unhealthy"`
	// recentlyUnhealthy is how many of them turned Suspect or Failed
	// within zoneGuard.windowSeconds (and still are).
	// +optional
	RecentlyUnhealthy int32 `json:"recentlyUnhealthy,omitempty"`
	// guarded: the zone guard holds migrations and new taints here.
	// +optional
	Guarded bool `json:"guarded,omitempty"`
}

// NodeLifecyclePolicyStatus is what the controller observed.
type NodeLifecyclePolicyStatus struct {
	// conditions: ZoneGuard.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation the status reflects.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// healthy, suspect and failed count the nodes by verdict.
	// +optional
	Healthy int32 `json:"healthy"`
	// +optional
	Suspect int32 `json:"suspect"`
	// +optional
	Failed int32 `json:"failed"`
	// zones lists each zone's health.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Zones []ZoneHealth `json:"zones,omitempty"`
	// recentMigrations are the migrations started within the last minute,
	// oldest first: the global rate limit's window (spec.migration.
	// maxPodsPerMinute), kept here so that a restarted controller honours
	// it. CAFE records a grant here before it asks any pod to migrate.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10000
	RecentMigrations []MigrationGrant `json:"recentMigrations,omitempty"`
	// recentTaints are the taints CAFE added within the last minute,
	// oldest first (pods counts taints here): the window of
	// spec.migration.maxNewTaintsPerMinute, recorded before the taints are
	// added.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10000
	RecentTaints []MigrationGrant `json:"recentTaints,omitempty"`
	// unhealthyNodes are the nodes CAFE judges Suspect or Failed, and since
	// when: the previous verdict each judgement starts from (a Failed node
	// stays Failed while any signal is bad). It is kept here, where only
	// CAFE writes, rather than read back from the node's cafe.io/NodeHealthy
	// condition, which kubelets and node-problem-detector can write too.
	// +optional
	// +listType=map
	// +listMapKey=node
	// +kubebuilder:validation:MaxItems=10000
	UnhealthyNodes []NodeVerdictRecord `json:"unhealthyNodes,omitempty"`
	// unhealthyHosts is the same for classic hosts, judged by the same
	// rules (docs/classic-hosts.md).
	// +optional
	// +listType=map
	// +listMapKey=host
	// +kubebuilder:validation:MaxItems=10000
	UnhealthyHosts []HostVerdictRecord `json:"unhealthyHosts,omitempty"`
}

// HostVerdictRecord is CAFE's verdict on a classic host that is not
// Healthy.
type HostVerdictRecord struct {
	// host is the ClassicHost's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host"`
	// verdict is Suspect or Failed.
	// +required
	// +kubebuilder:validation:Enum=Suspect;Failed
	Verdict NodeVerdict `json:"verdict"`
	// since is when the host reached the verdict.
	// +required
	Since metav1.Time `json:"since"`
}

// NodeVerdictRecord is CAFE's verdict on a node that is not Healthy.
type NodeVerdictRecord struct {
	// node is the node's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// verdict is Suspect or Failed.
	// +required
	// +kubebuilder:validation:Enum=Suspect;Failed
	Verdict NodeVerdict `json:"verdict"`
	// since is when the node reached the verdict.
	// +required
	Since metav1.Time `json:"since"`
}

// MigrationGrant is one grant of the global rate limit.
type MigrationGrant struct {
	// time is when the migrations were granted.
	// +required
	Time metav1.MicroTime `json:"time"`
	// pods is how many pods were granted a migration then.
	// +required
	// +kubebuilder:validation:Minimum=1
	Pods int32 `json:"pods"`
}

// NodeLifecyclePolicy is the cluster-wide policy of CAFE's node lifecycle
// controller: which signals judge a node, how many must agree for how long
// before it is Suspect (cordoned) or Failed (its pods migrated), and the
// safety limits on migration. Only the one named "default" is read.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=nlp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Healthy",type=integer,JSONPath=`.status.healthy`
// +kubebuilder:printcolumn:name="Suspect",type=integer,JSONPath=`.status.suspect`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="ZoneGuard",type=string,JSONPath=`.status.conditions[?(@.type=="ZoneGuard")].status`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="metadata.name: the NodeLifecyclePolicy must be named default"
type NodeLifecyclePolicy struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the policy; `spec: {}` takes every default.
	// +required
	Spec NodeLifecyclePolicySpec `json:"spec,omitzero"`

	// status is what the controller observed.
	// +optional
	Status NodeLifecyclePolicyStatus `json:"status,omitzero"`
}

// NodeLifecyclePolicyList is a list of NodeLifecyclePolicies.
//
// +kubebuilder:object:root=true
type NodeLifecyclePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the policies.
	Items []NodeLifecyclePolicy `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &NodeLifecyclePolicy{}, &NodeLifecyclePolicyList{})
}
