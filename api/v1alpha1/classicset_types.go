package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClassicSetLabel marks the instances of a ClassicSet with its name.
const ClassicSetLabel = "cafe.io/classicset"

// ClassicSet condition types and reasons.
const (
	// ClassicSetPlacedCondition is True when every instance spec.replicas
	// asks for has a host; False (reason NoHostAvailable) names what is
	// missing: Ready schedulable hosts in the zone, capacity, a free port.
	ClassicSetPlacedCondition = "Placed"
	// ClassicSetPlacedReason: every instance has a host.
	ClassicSetPlacedReason = "Placed"
	// ClassicSetNoHostAvailableReason: an instance has no host to go to.
	ClassicSetNoHostAvailableReason = "NoHostAvailable"

	// ClassicSetInstancesUpToDateCondition is True when every instance
	// above the partition runs the update revision; the reasons are the
	// InPlaceSet's (UpToDate, Updating, WaitingForTraffic, UpdatePaused).
	ClassicSetInstancesUpToDateCondition = "InstancesUpToDate"
)

// ClassicSetSpec is the desired state of a ClassicSet.
type ClassicSetSpec struct {
	// replicas is the desired number of instances, at most one per host.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas *int32 `json:"replicas,omitempty"` // A pointer, or 0 would be omitted and defaulted to 1.

	// selector selects the instances of this ClassicSet. It must match
	// spec.template.metadata.labels and cannot change after creation.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.selector is immutable"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// template describes the instances.
	// +required
	Template ClassicInstanceTemplate `json:"template"`

	// placement says which classic hosts may run the instances.
	// +required
	Placement ClassicPlacement `json:"placement"`

	// updateStrategy says how instances move to a new revision: partition
	// instances stay on the old one, at most maxUnavailable are out of
	// traffic at once, each is drained before its package changes and
	// returns after minReadySeconds of passing its health check.
	// +optional
	// +kubebuilder:default={}
	UpdateStrategy InPlaceSetUpdateStrategy `json:"updateStrategy,omitzero"`
}

// ClassicInstanceTemplate is what a ClassicSet's instances are made from.
type ClassicInstanceTemplate struct {
	// metadata holds the instances' labels (a Service selecting them lists
	// them in its EndpointSlices) and annotations.
	// +optional
	Metadata ClassicInstanceTemplateMeta `json:"metadata,omitzero"`

	// artifact is the package every instance runs.
	// +required
	Artifact ClassicArtifact `json:"artifact"`
}

// ClassicInstanceTemplateMeta is the metadata a template gives its
// instances.
type ClassicInstanceTemplateMeta struct {
	// labels of the instances.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Labels map[string]string `json:"labels,omitempty"`

	// annotations of the instances.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ClassicPlacement selects the hosts of a ClassicSet's instances: the
// Ready, schedulable ClassicHosts of the zone and cell (each when set),
// with room under their capacity and the artifact's port free.
//
// +kubebuilder:validation:XValidation:rule="has(self.zone) || has(self.cell)",message="spec.placement: set zone, cell or both"
type ClassicPlacement struct {
	// zone is the ClassicHosts' spec.zone.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Zone string `json:"zone,omitempty"`

	// cell is the ClassicHosts' spec.cell.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Cell string `json:"cell,omitempty"`
}

// ClassicSetStatus is the observed state of a ClassicSet.
type ClassicSetStatus struct {
	// conditions: Placed, InstancesUpToDate.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the counts were taken for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas counts the instances.
	// +optional
	Replicas int32 `json:"replicas"`

	// readyReplicas counts the instances whose health check passes on a
	// Ready host.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// availableReplicas counts the ready instances whose traffic gate is
	// open and that have been ready for minReadySeconds.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas"`

	// updatedReplicas counts the instances on the update revision.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas"`

	// updatedAvailableReplicas counts the available instances on the
	// update revision.
	// +optional
	UpdatedAvailableReplicas int32 `json:"updatedAvailableReplicas"`

	// updateRevision is the hash of spec.template.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	UpdateRevision string `json:"updateRevision,omitempty"`

	// selector is spec.selector in string form, for the scale subresource.
	// +optional
	// +kubebuilder:validation:MaxLength=10240
	Selector string `json:"selector,omitempty"`
}

// ClassicSet runs an app's instances on classic hosts: the counterpart of
// an InPlaceSet for VMs. It places ClassicInstances on the Ready hosts of
// its zone, at most one per host, and moves them to a new package by the
// lossless protocol (close the gate, wait until no traffic system routes to
// the instance, change the package, reopen once healthy). A CafeDeployment
// runs one per classic unit.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=classicsets,scope=Namespaced,shortName=cset,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Updated",type=integer,JSONPath=`.status.updatedReplicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.spec.placement.zone`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 57",message="metadata.name must be at most 57 characters: an instance is named after it with a suffix of its host"
type ClassicSet struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the ClassicSet.
	// +required
	Spec ClassicSetSpec `json:"spec"`

	// status is the observed state of the ClassicSet.
	// +optional
	Status ClassicSetStatus `json:"status,omitzero"`
}

// ClassicSetList is a list of ClassicSets.
//
// +kubebuilder:object:root=true
type ClassicSetList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ClassicSets.
	Items []ClassicSet `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ClassicSet{}, &ClassicSetList{})
}
