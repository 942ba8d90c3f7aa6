package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CafeDeployment condition types and reasons.
const (
	// CafeDeploymentAvailableCondition is True when at least
	// spec.strategy.minAvailable pods (the water level) are available.
	CafeDeploymentAvailableCondition = "Available"

	// CafeDeploymentAvailableReason surfaces when the water level is met.
	CafeDeploymentAvailableReason = "Available"

	// CafeDeploymentNotAvailableReason surfaces when fewer pods than the
	// water level are available.
	CafeDeploymentNotAvailableReason = "NotAvailable"

	// CafeDeploymentAvailableInternalErrorReason surfaces when availability
	// could not be computed.
	CafeDeploymentAvailableInternalErrorReason = "InternalError"
)

const (
	// CafeDeploymentProgressingCondition is True while pods are being
	// created, updated, moved or deleted to reach the spec.
	CafeDeploymentProgressingCondition = "Progressing"

	// CafeDeploymentProgressingReason surfaces while a release or a scale is
	// under way.
	CafeDeploymentProgressingReason = "Progressing"

	// CafeDeploymentNotProgressingReason surfaces when every pod matches the
	// spec.
	CafeDeploymentNotProgressingReason = "NotProgressing"

	// CafeDeploymentWaitingForTrafficReason surfaces while the release
	// waits for a traffic system to let go of a draining pod for longer
	// than a normal drain takes (e.g. the gateway cannot confirm the pod
	// left its routes). The message names the unit, the pod and the holder.
	CafeDeploymentWaitingForTrafficReason = "WaitingForTraffic"

	// CafeDeploymentRollingBackReason surfaces while the pods are being
	// returned to the previous revision.
	CafeDeploymentRollingBackReason = "RollingBack"

	// CafeDeploymentReleaseFailedReason surfaces when a release stopped and
	// needs a person.
	CafeDeploymentReleaseFailedReason = "ReleaseFailed"

	// CafeDeploymentInvalidTopologyReason surfaces when the replicas cannot be
	// split over spec.topology (see SplitReplicas).
	CafeDeploymentInvalidTopologyReason = "InvalidTopology"
)

const (
	// CafeDeploymentReleasePausedCondition is True while spec.strategy.pause
	// holds the release before its next pod operation.
	CafeDeploymentReleasePausedCondition = "ReleasePaused"

	// CafeDeploymentPausedReason surfaces when spec.strategy.pause is true.
	CafeDeploymentPausedReason = "Paused"

	// CafeDeploymentNotPausedReason surfaces when spec.strategy.pause is false.
	CafeDeploymentNotPausedReason = "NotPaused"
)

const (
	// CafeDeploymentWaitingForConfirmCondition is True when a group has
	// finished and spec.strategy.needWaitingForConfirm holds the next group
	// until a person confirms.
	CafeDeploymentWaitingForConfirmCondition = "WaitingForConfirm"

	// CafeDeploymentWaitingForConfirmReason surfaces while a confirmation is
	// awaited.
	CafeDeploymentWaitingForConfirmReason = "WaitingForConfirm"

	// CafeDeploymentConfirmedReason surfaces once the awaited confirmation
	// has been given.
	CafeDeploymentConfirmedReason = "Confirmed"

	// CafeDeploymentNotWaitingForConfirmReason surfaces when no confirmation
	// is awaited.
	CafeDeploymentNotWaitingForConfirmReason = "NotWaitingForConfirm"
)

const (
	// CafeDeploymentTrafficStepCondition is True while a traffic step
	// steers the app's route (spec.strategy.traffic).
	CafeDeploymentTrafficStepCondition = "TrafficStep"

	// CafeDeploymentSteeringReason: the route sends the step's share of
	// requests to the updated pods.
	CafeDeploymentSteeringReason = "Steering"

	// CafeDeploymentNotSteeringReason: no step runs; the route is plain.
	CafeDeploymentNotSteeringReason = "NotSteering"

	// CafeDeploymentAnalysisFailedReason: a step's TrafficAnalysis judged
	// the updated pods bad; the route sends them nothing, the release failed.
	CafeDeploymentAnalysisFailedReason = "AnalysisFailed"

	// CafeDeploymentRollingBackRejectedReason: the release rolls back pods
	// whose analysis failed (status.release.rejectedRevision); the route
	// sends every request to the pods it returns to, none to those.
	CafeDeploymentRollingBackRejectedReason = "RollingBackRejected"

	// CafeDeploymentTrafficErrorReason: CAFE could not bring the route or
	// the canary and stable Services to what the release needs; the message
	// says why.
	CafeDeploymentTrafficErrorReason = "TrafficError"
)

// PodSetType is the kind of pod set a CafeDeployment runs in each unit.
// +kubebuilder:validation:Enum=InPlaceSet;ReplicaSet;StatefulSet
type PodSetType string

const (
	// PodSetTypeInPlaceSet updates pods in place: a pod keeps its name, UID,
	// node and IP.
	PodSetTypeInPlaceSet PodSetType = "InPlaceSet"

	// PodSetTypeReplicaSet replaces pods, with the semantics of apps/v1
	// ReplicaSet.
	PodSetTypeReplicaSet PodSetType = "ReplicaSet"

	// PodSetTypeStatefulSet gives pods a stable identity and storage, with the
	// semantics of apps/v1 StatefulSet.
	PodSetTypeStatefulSet PodSetType = "StatefulSet"
)

// UnitType is the kind of topology unit that pods are spread over.
// +kubebuilder:validation:Enum=Zone;Cell
type UnitType string

const (
	// UnitTypeZone spreads pods over the node label topology.kubernetes.io/zone.
	UnitTypeZone UnitType = "Zone"

	// UnitTypeCell spreads pods over the node label cafe.io/cell.
	UnitTypeCell UnitType = "Cell"
)

// UpgradeType is how a release forms its groups.
// +kubebuilder:validation:Enum=Beta;Batch
type UpgradeType string

const (
	// UpgradeTypeBeta releases a beta group of one pod per unit first, then
	// the remaining pods in groups.
	UpgradeTypeBeta UpgradeType = "Beta"

	// UpgradeTypeBatch releases all pods in groups, without a beta group.
	UpgradeTypeBatch UpgradeType = "Batch"
)

// GroupOrder is how a release orders pods of different units.
// +kubebuilder:validation:Enum=Interleaved;UnitByUnit
type GroupOrder string

const (
	// GroupOrderInterleaved takes the pods of each group from every unit, in
	// proportion to the unit's replicas.
	GroupOrderInterleaved GroupOrder = "Interleaved"

	// GroupOrderUnitByUnit releases every pod of a unit, in the order of
	// spec.topology.values, before it starts the next unit.
	GroupOrderUnitByUnit GroupOrder = "UnitByUnit"
)

// ReleasePhase is where the current release of a CafeDeployment stands.
// +kubebuilder:validation:Enum=Progressing;Verifying;WaitingForConfirm;Paused;Completed;Failed;RollingBack
type ReleasePhase string

const (
	// ReleasePhaseProgressing means pods of the current group are being
	// operated on.
	ReleasePhaseProgressing ReleasePhase = "Progressing"

	// ReleasePhaseVerifying means a group has finished and its traffic
	// step runs: the route sends the step's share of requests to the
	// updated pods until the step's duration elapses or a person confirms.
	ReleasePhaseVerifying ReleasePhase = "Verifying"

	// ReleasePhaseWaitingForConfirm means a group has finished and the next
	// one waits for a person to confirm.
	ReleasePhaseWaitingForConfirm ReleasePhase = "WaitingForConfirm"

	// ReleasePhasePaused means spec.strategy.pause holds the release.
	ReleasePhasePaused ReleasePhase = "Paused"

	// ReleasePhaseCompleted means every pod runs the update revision.
	ReleasePhaseCompleted ReleasePhase = "Completed"

	// ReleasePhaseFailed means the release stopped and needs a person.
	ReleasePhaseFailed ReleasePhase = "Failed"

	// ReleasePhaseRollingBack means pods are being returned to the previous
	// revision.
	ReleasePhaseRollingBack ReleasePhase = "RollingBack"
)

// Notes on the CEL rules below and in this file (kept out of the doc
// comments, which become the CRD's descriptions):
//   - Rules that need the whole spec sit on CafeDeploymentSpec.
//   - The API server estimates the cost of a rule from the largest value a
//     field may hold, and sizes an int-or-string at the whole request
//     (controller-gen cannot put maxLength on it). On list items and map
//     values a regex, string() or "type(x) == int" then exceeds the budget,
//     so those rules test the type with "type(x) in [int]" and spell out
//     ^(100|[1-9]?[0-9])%$ with charAt. Top-level fields keep the regex.
//   - Left to the validating webhook, as CEL cannot express them sanely:
//     spec.selector matching spec.template labels; custom groups that mix
//     integers and percentages covering every replica; unitReplicas
//     percentages added to the integers exceeding spec.replicas
//     (SplitReplicas reports it too). The sum of the integers alone is
//     checked here.

// CafeDeploymentSpec is the desired state of a CafeDeployment.
//
// +kubebuilder:validation:XValidation:rule="!has(self.volumeClaimTemplates) || size(self.volumeClaimTemplates) == 0 || (has(self.podSetType) && self.podSetType == 'StatefulSet')",message="spec.volumeClaimTemplates is only allowed when spec.podSetType is StatefulSet",fieldPath=".volumeClaimTemplates"
// +kubebuilder:validation:XValidation:rule="!has(self.topology) || !has(self.topology.unitReplicas) || !has(self.replicas) || self.topology.unitReplicas.filter(u, type(self.topology.unitReplicas[u]) in [int]).map(u, int(self.topology.unitReplicas[u])).sum() <= self.replicas",message="spec.topology.unitReplicas: the integer entries add up to more than spec.replicas",fieldPath=".topology.unitReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.topology) || !has(self.topology.unitReplicas) || !has(self.replicas) || !self.topology.values.all(u, u in self.topology.unitReplicas && type(self.topology.unitReplicas[u]) in [int]) || self.topology.unitReplicas.filter(u, type(self.topology.unitReplicas[u]) in [int]).map(u, int(self.topology.unitReplicas[u])).sum() >= self.replicas",message="spec.topology.unitReplicas: when every unit has an integer entry, the entries must add up to spec.replicas",fieldPath=".topology.unitReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.minAvailable) || !has(self.replicas) || !(type(self.strategy.minAvailable) in [int]) || int(self.strategy.minAvailable) <= self.replicas",message="spec.strategy.minAvailable must not exceed spec.replicas",fieldPath=".strategy.minAvailable"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.groups) || !has(self.topology) || self.strategy.groups.all(g, !has(g.units) || g.units.all(u, u in self.topology.values))",message="spec.strategy.groups[].units: unknown unit; every unit must be listed in spec.topology.values",fieldPath=".strategy.groups"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas == 0 || !has(self.strategy) || !has(self.strategy.batchSize) || (has(self.strategy.groups) && size(self.strategy.groups) > 0) || type(self.strategy.batchSize) != int || int(self.strategy.batchSize) < 1 || (has(self.strategy.upgradeType) && self.strategy.upgradeType == 'Batch' ? (self.replicas + int(self.strategy.batchSize) - 1) / int(self.strategy.batchSize) : 1 + (self.replicas + int(self.strategy.batchSize) - 2) / int(self.strategy.batchSize)) + (has(self.strategy.groupOrder) && self.strategy.groupOrder == 'UnitByUnit' && has(self.topology) && has(self.topology.values) ? size(self.topology.values) - 1 : 0) <= 512",message="spec.strategy.batchSize: the release would need more than 512 groups, all that status.release.groups can hold (the beta group, then spec.replicas / batchSize batches, and with groupOrder UnitByUnit one more per unit after the first); raise batchSize, use a percentage, or lower spec.replicas",fieldPath=".strategy.batchSize"
// +kubebuilder:validation:XValidation:rule="!has(self.classic) || self.classic.units.all(u, u in self.topology.values)",message="spec.classic.units: unknown unit; every classic unit must be listed in spec.topology.values",fieldPath=".classic.units"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || !has(self.podSetType) || self.podSetType == 'InPlaceSet'",message="spec.endpoints is only allowed when spec.podSetType is InPlaceSet",fieldPath=".endpoints"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || !has(self.classic)",message="spec.endpoints cannot be combined with spec.classic: classic instances are published from a Service's selector",fieldPath=".endpoints"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || !has(self.strategy) || !has(self.strategy.traffic)",message="spec.endpoints cannot be combined with spec.strategy.traffic: traffic steps steer through Services that select the pods",fieldPath=".endpoints"
// +kubebuilder:validation:XValidation:rule="has(self.classic) == has(oldSelf.classic)",message="spec.classic cannot be added or removed after creation: a unit cannot move between pods and classic hosts in place"
type CafeDeploymentSpec struct {
	// replicas is the desired number of pods over all units.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Replicas *int32 `json:"replicas,omitempty"` // A pointer, or 0 would be omitted and defaulted to 1.

	// selector selects the pods of this CafeDeployment. It must match the
	// labels of spec.template and cannot change after creation.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.selector is immutable"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// template describes the pods to create in every unit. Its annotations
	// may not use the cafe.io/ prefix, which CAFE keeps for the annotations
	// it acts on.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.metadata) || !has(self.metadata.annotations) || self.metadata.annotations.all(k, !k.startsWith('cafe.io/'))",message="spec.template.metadata.annotations: the cafe.io/ prefix is reserved for CAFE's control annotations (drain, migration, force delete); a template may not set them",fieldPath=".metadata.annotations"
	Template corev1.PodTemplateSpec `json:"template,omitzero"`

	// revisionHistoryLimit is the number of old revisions to keep for
	// rollback.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`

	// volumeClaimTemplates are the claims every pod gets, as in apps/v1
	// StatefulSet. Only allowed when podSetType is StatefulSet.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	VolumeClaimTemplates []corev1.PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`

	// podSetType is the kind of pod set run in each unit. It cannot change
	// after creation: the pod sets of one type cannot take over the pods of
	// another.
	// +optional
	// +kubebuilder:default=InPlaceSet
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.podSetType is immutable; create a new CafeDeployment to change it"
	PodSetType PodSetType `json:"podSetType,omitempty"`

	// topology says which units the pods are spread over, and how many go
	// to each.
	// +required
	Topology Topology `json:"topology,omitzero"`

	// strategy says how a release moves pods to a new revision.
	// +optional
	// +kubebuilder:default={}
	Strategy CafeDeploymentStrategy `json:"strategy,omitzero"`

	// classic runs the units it names on classic hosts (VMs) instead of
	// pods: each is a ClassicSet of instances of classic.artifact on the
	// Ready hosts of that zone (or cell, by topology.unitType), released in
	// the same groups, under the same water level and lossless drain as
	// the pod units. The artifact is part of the revision: changing it
	// releases the classic units, and rolling back restores it.
	// +optional
	Classic *ClassicUnits `json:"classic,omitempty"`

	// endpoints makes CAFE write the EndpointSlices of the named Service
	// (one without a selector) for the pods of every unit, instead of the
	// EndpointSlice controller: an in-place update then drains a pod by
	// taking it out of CAFE's slices, with no write to the pod, which
	// makes a release several times cheaper for the control plane
	// (docs/cafedeployment.md, "Endpoints CAFE writes"). Only with
	// podSetType InPlaceSet, without classic units (their endpoints follow
	// a Service's selector) and without traffic steps (they steer through
	// Services that select the pods).
	// +optional
	Endpoints *PodSetEndpoints `json:"endpoints,omitempty"`
}

// ClassicUnits are the units of a CafeDeployment that run on classic hosts,
// and what they run.
type ClassicUnits struct {
	// units are values of spec.topology.values run as classic instances;
	// the others run pods. They cannot change after creation.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.classic.units is immutable: a unit cannot move between pods and classic hosts in place"
	Units []string `json:"units"`

	// artifact is the package the classic instances run. The template's
	// labels are given to the instances, so the app's Service lists them
	// beside its pods.
	// +required
	Artifact ClassicArtifact `json:"artifact"`
}

// Topology is the set of units that the pods of a CafeDeployment are spread
// over.
//
// +kubebuilder:validation:XValidation:rule="!has(self.unitReplicas) || self.unitReplicas.all(u, u in self.values)",message="spec.topology.unitReplicas: unknown unit; every key must be listed in spec.topology.values",fieldPath=".unitReplicas"
type Topology struct {
	// unitType is the kind of unit: Zone (node label
	// topology.kubernetes.io/zone) or Cell (node label cafe.io/cell). It
	// cannot change after creation, because every unit name would change
	// meaning.
	// +optional
	// +kubebuilder:default=Zone
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.topology.unitType is immutable"
	UnitType UnitType `json:"unitType,omitempty"`

	// values are the units, as values of the unitType node label (for
	// example zone-a, zone-b). Each is a DNS-1123 label (lower case letters,
	// digits and '-'): it is part of the names of the unit's pod sets. Their order decides which units get the
	// remainder of an even split and the order of UnitByUnit releases.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Values []string `json:"values,omitempty"`

	// unitReplicas pins the number of pods of some units, as an integer or
	// a percentage of spec.replicas (rounded down). The units without an
	// entry share the rest evenly, the first units in values taking the
	// remainder. When every unit has an entry, what percentages leave over
	// goes to the units with a percentage entry the same way.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(u, type(self[u]) in [int] ? int(self[u]) >= 0 : self[u] == '100%' || (self[u].endsWith('%') && (size(self[u]) == 2 && self[u].charAt(0) >= '0' && self[u].charAt(0) <= '9' || size(self[u]) == 3 && self[u].charAt(0) >= '1' && self[u].charAt(0) <= '9' && self[u].charAt(1) >= '0' && self[u].charAt(1) <= '9')))",message="spec.topology.unitReplicas: each value must be an integer >= 0 or a percentage from 0% to 100%"
	UnitReplicas map[string]intstr.IntOrString `json:"unitReplicas,omitempty"`

	// autoReschedule moves the pods of a failed node to healthy nodes of the
	// same unit.
	// +optional
	AutoReschedule AutoReschedule `json:"autoReschedule,omitzero"`
}

// AutoReschedule says whether and when replicas a unit cannot run move to
// the other units.
type AutoReschedule struct {
	// enable turns automatic rescheduling on: replicas whose pods stay
	// unschedulable in their unit (zone full or down) move to the other
	// units, and move back once the unit has a schedulable node again.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// initialDelaySeconds is how long a pod must have been unschedulable
	// before its replica moves, so that a short blip does not move it.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	InitialDelaySeconds *int32 `json:"initialDelaySeconds,omitempty"` // A pointer, or 0 would be defaulted to 10.
}

// CafeDeploymentStrategy says how a release moves pods to a new revision, in
// groups, and how many pods must stay available meanwhile.
type CafeDeploymentStrategy struct {
	// upgradeType is Beta (a first group of one pod per unit, then the other
	// groups) or Batch (groups only).
	// +optional
	// +kubebuilder:default=Beta
	UpgradeType UpgradeType `json:"upgradeType,omitempty"`

	// batchSize is the number of pods per group, as an integer or a
	// percentage of spec.replicas. Ignored when groups is set.
	// +optional
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? int(self) >= 1 : string(self).matches('^(100|[1-9][0-9]?)%$')",message="spec.strategy.batchSize must be an integer >= 1 or a percentage from 1% to 100%"
	BatchSize *intstr.IntOrString `json:"batchSize,omitempty"`

	// groups lists the groups of a release explicitly and replaces the
	// groups computed from batchSize. With upgradeType Beta the beta group
	// still comes first. The groups must cover every replica.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Groups []ReleaseGroup `json:"groups,omitempty"`

	// groupOrder is Interleaved (each group takes pods from every unit) or
	// UnitByUnit (a unit is finished, in the order of topology.values,
	// before the next one starts).
	// +optional
	// +kubebuilder:default=Interleaved
	GroupOrder GroupOrder `json:"groupOrder,omitempty"`

	// needWaitingForConfirm holds each next group until a person confirms
	// the previous one. Unset behaves as false today; it is a pointer so that
	// "not said" stays apart from an explicit false, which lets a
	// ReleaseOrder supply the default later.
	// +optional
	NeedWaitingForConfirm *bool `json:"needWaitingForConfirm,omitempty"`

	// pause stops the release before its next pod operation. Operations
	// already started finish.
	// +optional
	Pause bool `json:"pause,omitempty"`

	// minReadySeconds is how long a pod must be ready, without any container
	// crashing, to count as available.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`

	// maxUnavailable is the number of pods of one unit that may be
	// unavailable during a release, as an integer or a percentage of the
	// unit's replicas.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? int(self) >= 0 : string(self).matches('^(100|[1-9]?[0-9])%$')",message="spec.strategy.maxUnavailable must be an integer >= 0 or a percentage from 0% to 100%"
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`

	// maxSurgeSizeInGroup is the number of extra pods a group may create
	// above the desired count when pods are replaced (ReplicaSet and
	// StatefulSet modes), as an integer or a percentage of the group size.
	// +optional
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? int(self) >= 0 : string(self).matches('^(100|[1-9]?[0-9])%$')",message="spec.strategy.maxSurgeSizeInGroup must be an integer >= 0 or a percentage from 0% to 100%"
	MaxSurgeSizeInGroup *intstr.IntOrString `json:"maxSurgeSizeInGroup,omitempty"`

	// minAvailable is the water level: the number of pods of the whole
	// CafeDeployment that must stay available, as an integer or a
	// percentage of spec.replicas. No pod operation may take the available
	// pods below it.
	// +optional
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? int(self) >= 0 : string(self).matches('^(100|[1-9]?[0-9])%$')",message="spec.strategy.minAvailable must be an integer >= 0 or a percentage from 0% to 100%"
	MinAvailable *intstr.IntOrString `json:"minAvailable,omitempty"`

	// traffic steers real traffic to the updated pods after chosen groups,
	// through the app's HTTPRoute (docs/traffic-verification.md). A group
	// with a traffic step is a barrier: the release does not flow past it.
	// +optional
	Traffic *TrafficStrategy `json:"traffic,omitempty"`
}

// TrafficStrategy names the app's HTTPRoute and Service and the release's
// traffic steps.
type TrafficStrategy struct {
	// route is the app's HTTPRoute (Gateway API), in the CafeDeployment's
	// namespace. Its rules that send to the app's Service alone are
	// steered during a step, and restored after it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Route string `json:"route"`

	// service is the app's Service, which the route's rules send to. CAFE
	// keeps two Services beside it, <service>-canary and <service>-stable,
	// selecting the CafeDeployment's pods of the update and of the current
	// revision.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=56
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Service string `json:"service"`

	// steps are the traffic steps, at most one per group.
	// +required
	// +listType=map
	// +listMapKey=group
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Steps []TrafficStep `json:"steps"`
}

// TrafficStep sends, once its group is released, a share of the app's
// requests to the updated pods (weight), or only the requests that carry
// given headers; for durationSeconds, or until a person confirms the group
// when it is unset.
//
// +kubebuilder:validation:XValidation:rule="has(self.weight) != has(self.headers)",message="exactly one of weight and headers must be set"
type TrafficStep struct {
	// group is the index of the release group after which the step runs
	// (0: the first group, the beta group with upgradeType Beta). It must
	// not be the last group: after it every pod runs the update revision.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=511
	Group int32 `json:"group"`

	// weight is the percentage of the route's requests sent to the updated
	// pods (0–100), the rest to the pods of the current revision.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`

	// headers sends only the requests that carry every one of these
	// headers (exact values) to the updated pods, e.g. x-cafe-canary:
	// always; every other request to the pods of the current revision.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Headers []TrafficHeader `json:"headers,omitempty"`

	// durationSeconds is how long the step lasts at least. Without it and
	// without an analysis, the step lasts until a person confirms the group
	// (cafe deploy confirm).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	DurationSeconds *int32 `json:"durationSeconds,omitempty"`

	// analysis names a TrafficAnalysis of the namespace that judges the
	// step: the step ends once it passes (and durationSeconds, if set,
	// elapsed); when it fails, the route sends nothing to the updated pods
	// any more and the release fails (phase Failed) for a person or the
	// release order's failure policy to act on.
	// +optional
	Analysis *TrafficAnalysisReference `json:"analysis,omitempty"`
}

// TrafficAnalysisReference names a TrafficAnalysis in the same namespace.
type TrafficAnalysisReference struct {
	// name of the TrafficAnalysis.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// TrafficHeader is an HTTP header a request must carry, with this exact
// value.
type TrafficHeader struct {
	// name is the header's name, case-insensitive.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`

	// value is the header's exact value.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// ReleaseGroup is one group of a custom release plan.
type ReleaseGroup struct {
	// replicas is the number of pods in the group, as an integer or a
	// percentage of spec.replicas.
	// +required
	// +kubebuilder:validation:XValidation:rule="type(self) in [int] ? int(self) >= 1 : self == '100%' || (self.endsWith('%') && (size(self) == 2 && self.charAt(0) >= '1' && self.charAt(0) <= '9' || size(self) == 3 && self.charAt(0) >= '1' && self.charAt(0) <= '9' && self.charAt(1) >= '0' && self.charAt(1) <= '9'))",message="spec.strategy.groups[].replicas must be an integer >= 1 or a percentage from 1% to 100%"
	Replicas intstr.IntOrString `json:"replicas"`

	// units limits the group to pods of these units. Empty means every
	// unit.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Units []string `json:"units,omitempty"`
}

// CafeDeploymentStatus is the observed state of a CafeDeployment.
type CafeDeploymentStatus struct {
	// conditions describe the current state of the CafeDeployment. Known
	// types are Available, Progressing, ReleasePaused and WaitingForConfirm.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation this status was computed
	// from.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of pods that exist.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of pods with a Ready condition.
	// +optional
	ReadyReplicas *int32 `json:"readyReplicas,omitempty"`

	// availableReplicas is the number of pods ready for at least
	// spec.strategy.minReadySeconds.
	// +optional
	AvailableReplicas *int32 `json:"availableReplicas,omitempty"`

	// updatedReplicas is the number of pods on updateRevision.
	// +optional
	UpdatedReplicas *int32 `json:"updatedReplicas,omitempty"`

	// selector is spec.selector in string form, for the scale subresource
	// (and so for a HorizontalPodAutoscaler).
	// +optional
	// +kubebuilder:validation:MaxLength=10240
	Selector string `json:"selector,omitempty"`

	// currentRevision is the revision that every pod ran before the current
	// release.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CurrentRevision string `json:"currentRevision,omitempty"`

	// updateRevision is the revision built from the current spec.template.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	UpdateRevision string `json:"updateRevision,omitempty"`

	// units are the pod counts per unit.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Units []UnitStatus `json:"units,omitempty"`

	// release is the progress of the current (or last) release.
	// +optional
	Release ReleaseStatus `json:"release,omitzero"`
}

// UnitStatus holds the pod counts of one unit.
type UnitStatus struct {
	// name is the unit, one of spec.topology.values.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// desiredReplicas is the unit's share of spec.replicas.
	// +optional
	DesiredReplicas *int32 `json:"desiredReplicas,omitempty"`

	// replicas is the number of pods in the unit.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of ready pods in the unit.
	// +optional
	ReadyReplicas *int32 `json:"readyReplicas,omitempty"`

	// availableReplicas is the number of available pods in the unit.
	// +optional
	AvailableReplicas *int32 `json:"availableReplicas,omitempty"`

	// updatedReplicas is the number of pods of the unit on updateRevision.
	// +optional
	UpdatedReplicas *int32 `json:"updatedReplicas,omitempty"`

	// rescheduledReplicas is how many of the unit's replicas run in other
	// units because the unit could not schedule them (autoReschedule).
	// +optional
	// +kubebuilder:validation:Minimum=0
	RescheduledReplicas *int32 `json:"rescheduledReplicas,omitempty"`
}

// ReleaseStatus is the progress of a release, group by group.
type ReleaseStatus struct {
	// phase is where the release stands.
	// +optional
	Phase ReleasePhase `json:"phase,omitempty"`

	// currentGroup is the index of the group being released (0 is the beta
	// group when upgradeType is Beta).
	// +optional
	// +kubebuilder:validation:Minimum=0
	CurrentGroup *int32 `json:"currentGroup,omitempty"`

	// totalGroups is the number of groups of the release.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TotalGroups *int32 `json:"totalGroups,omitempty"`

	// groups records the groups that have started, for review and audit.
	// +optional
	// +listType=map
	// +listMapKey=index
	// +kubebuilder:validation:MaxItems=512
	Groups []ReleaseGroupStatus `json:"groups,omitempty"`

	// trafficStepsSkipped is set when the release began while the one
	// before it had not finished (a rollback of a failed or interrupted
	// release): its pods then run several revisions, there is no one stable
	// revision to compare with, and the release runs without its traffic
	// steps, the route the app's own.
	// +optional
	TrafficStepsSkipped bool `json:"trafficStepsSkipped,omitempty"`

	// rejectedRevision is the revision whose traffic analysis failed in the
	// release this one replaced, when this release returns the pods to the
	// revision that release was replacing (a rollback after a failed
	// verdict). Until it completes, the stable Service selects the pods of
	// this release's revision and the route sends every request there,
	// none to the rejected pods it rolls back.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RejectedRevision string `json:"rejectedRevision,omitempty"`

	// trafficStep is the traffic step running now, e.g. "group 0: 10% to
	// pay-canary" (empty when none runs), for kubectl's columns.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	TrafficStep string `json:"trafficStep,omitempty"`

	// verdict is the verdict on the release's latest traffic step with an
	// analysis (empty while none has one).
	// +optional
	Verdict AnalysisOutcome `json:"verdict,omitempty"`
}

// ReleaseGroupStatus records one group of a release.
type ReleaseGroupStatus struct {
	// index is the position of the group in the release, from 0.
	// +required
	// +kubebuilder:validation:Minimum=0
	Index int32 `json:"index"`

	// pods are the names of the pods in the group.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=253
	Pods []string `json:"pods,omitempty"`

	// startTime is when the first pod of the group was operated on.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// finishTime is when the last pod of the group became available.
	// +optional
	FinishTime *metav1.Time `json:"finishTime,omitempty"`

	// confirmedBy is the authenticated user name of the person who
	// confirmed the group. It comes from the request's user info, never
	// from what the client sent, so it can be audited.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	ConfirmedBy string `json:"confirmedBy,omitempty"`

	// confirmedAt is when the group was confirmed.
	// +optional
	ConfirmedAt *metav1.Time `json:"confirmedAt,omitempty"`

	// traffic is the group's traffic step, once begun.
	// +optional
	Traffic *TrafficStepStatus `json:"traffic,omitempty"`
}

// TrafficStepStatus records a group's traffic step.
type TrafficStepStatus struct {
	// split says what the step sent to the updated pods, e.g. "10% to
	// pay-canary" or "requests with x-cafe-canary: always to pay-canary".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Split string `json:"split,omitempty"`

	// startTime is when CAFE first steered the route for the step.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// endTime is when the step ended (its duration elapsed, its analysis
	// passed or failed, or the group was confirmed); the route is plain
	// again from then on, or sends nothing to the updated pods when the
	// analysis failed.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`

	// verdict is the analysis's outcome once decided: Passed or Failed.
	// +optional
	Verdict AnalysisOutcome `json:"verdict,omitempty"`

	// verdictReason says what the verdict rests on (the deciding query's
	// value against its threshold), or what the analysis waits for.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	VerdictReason string `json:"verdictReason,omitempty"`

	// overriddenBy is the authenticated user who overrode the analysis
	// (cafe deploy confirm --override-analysis), overriddenAt when, and
	// overrideReason why; the verdict is then Passed.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	OverriddenBy string `json:"overriddenBy,omitempty"`
	// +optional
	OverriddenAt *metav1.Time `json:"overriddenAt,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	OverrideReason string `json:"overrideReason,omitempty"`

	// passed, failed and inconclusive count every measurement of the
	// analysis by outcome.
	// +optional
	Passed int32 `json:"passed,omitempty"`
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`

	// measurements are the analysis's latest measurements, oldest first
	// (at most 20; every one is counted above).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Measurements []TrafficMeasurement `json:"measurements,omitempty"`
}

// TrafficMeasurement is one measurement of a step's analysis.
type TrafficMeasurement struct {
	// time is when it was taken.
	// +required
	Time metav1.Time `json:"time"`

	// outcome is Passed, Failed or Inconclusive.
	// +required
	Outcome AnalysisOutcome `json:"outcome"`

	// metrics are each metric's value and outcome.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Metrics []TrafficMetricValue `json:"metrics,omitempty"`
}

// TrafficMetricValue is one metric's part of a measurement: the query as
// sent, the value Prometheus gave, and what it meant.
type TrafficMetricValue struct {
	// name of the metric.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// query is the PromQL sent (placeholders replaced).
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Query string `json:"query,omitempty"`

	// value is the number Prometheus gave; empty when none.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Value string `json:"value,omitempty"`

	// outcome is Passed, Failed or Inconclusive.
	// +required
	Outcome AnalysisOutcome `json:"outcome"`

	// message says why: the comparison made, or why there is no value.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// CafeDeployment runs an application's pods over topology units (zones or
// cells), one pod set per unit, and releases new revisions group by group:
// pausable, confirmable and never below the water level.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=cafedeployments,scope=Namespaced,shortName=cdep,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Updated",type=integer,JSONPath=`.status.updatedReplicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.release.phase`
// +kubebuilder:printcolumn:name="Group",type=integer,JSONPath=`.status.release.currentGroup`
// +kubebuilder:printcolumn:name="Groups",type=integer,JSONPath=`.status.release.totalGroups`
// +kubebuilder:printcolumn:name="Step",type=string,JSONPath=`.status.release.trafficStep`
// +kubebuilder:printcolumn:name="Verdict",type=string,JSONPath=`.status.release.verdict`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.updateRevision`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1123 label of at most 63 characters: it is the value of the cafe.io/cafedeployment label on every pod and the start of its pod sets' names"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.topology) || !has(self.spec.topology.values) || self.spec.topology.values.all(u, size(self.metadata.name) + 1 + size(u) <= (has(self.spec.podSetType) && self.spec.podSetType == 'StatefulSet' ? 52 : 63))",message="metadata.name and spec.topology.values: each unit's pod set is named <metadata.name>-<unit>, a label value of at most 63 characters (52 with podSetType StatefulSet, whose pods carry <name>-<unit>-<hash>); shorten the name or the unit",fieldPath=".spec.topology.values"
type CafeDeployment struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the CafeDeployment.
	// +required
	Spec CafeDeploymentSpec `json:"spec,omitzero"`

	// status is the observed state of the CafeDeployment.
	// +optional
	Status CafeDeploymentStatus `json:"status,omitzero"`
}

// CafeDeploymentList is a list of CafeDeployments.
//
// +kubebuilder:object:root=true
type CafeDeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the CafeDeployments.
	Items []CafeDeployment `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &CafeDeployment{}, &CafeDeploymentList{})
}
