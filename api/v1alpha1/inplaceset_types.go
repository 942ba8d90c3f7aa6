package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// InPlaceSet condition types and reasons.
const (
	// InPlaceSetAvailableCondition is True when no more than
	// spec.updateStrategy.maxUnavailable pods are unavailable.
	InPlaceSetAvailableCondition = "Available"

	// InPlaceSetAvailableReason surfaces when enough pods are available.
	InPlaceSetAvailableReason = "Available"

	// InPlaceSetNotAvailableReason surfaces when too few pods are available.
	InPlaceSetNotAvailableReason = "NotAvailable"
)

const (
	// InPlaceSetPodsUpToDateCondition is True when every pod above the
	// partition runs updateRevision.
	InPlaceSetPodsUpToDateCondition = "PodsUpToDate"

	// InPlaceSetPodsUpToDateReason surfaces when no pod is left to update.
	InPlaceSetPodsUpToDateReason = "UpToDate"

	// InPlaceSetPodsUpdatingReason surfaces while pods are being updated in
	// place or recreated.
	InPlaceSetPodsUpdatingReason = "Updating"

	// InPlaceSetWaitingForTrafficReason surfaces when a pod's drain has
	// been held by a traffic system (an EndpointSlice, a traffic provider's
	// finalizer) for longer than a normal drain takes: no pod is operated on
	// until it lets go. The message names the pod and what holds it.
	InPlaceSetWaitingForTrafficReason = "WaitingForTraffic"

	// InPlaceSetPodsUpdatePausedReason surfaces when pods are out of date and
	// spec.updateStrategy.paused holds them.
	InPlaceSetPodsUpdatePausedReason = "UpdatePaused"
)

const (
	// InPlaceSetEndpointsPublishedCondition is True while the set writes
	// the EndpointSlices of spec.endpoints.service for its pods; absent
	// when spec.endpoints is not set.
	InPlaceSetEndpointsPublishedCondition = "EndpointsPublished"

	// InPlaceSetEndpointsPublishedReason surfaces while the set publishes
	// its pods' endpoints.
	InPlaceSetEndpointsPublishedReason = "Published"

	// InPlaceSetServiceNotFoundReason surfaces when spec.endpoints.service
	// does not exist: the set drains through the readiness gate.
	InPlaceSetServiceNotFoundReason = "ServiceNotFound"

	// InPlaceSetServiceSelectsPodsReason surfaces when the Service has a
	// selector (or is of type ExternalName): its endpoints are the
	// EndpointSlice controller's, and the set drains through the gate.
	InPlaceSetServiceSelectsPodsReason = "ServiceHasSelector"
)

const (
	// InPlaceSetScalingCondition is True while pods are being created or
	// deleted to reach spec.replicas.
	InPlaceSetScalingCondition = "Scaling"

	// InPlaceSetScalingUpReason surfaces while pods are being created.
	InPlaceSetScalingUpReason = "ScalingUp"

	// InPlaceSetScalingDownReason surfaces while pods are being deleted.
	InPlaceSetScalingDownReason = "ScalingDown"

	// InPlaceSetInvalidSpecReason surfaces when the spec asks for more than
	// CAFE supports (an object admitted without the CRD's bounds): the
	// controller leaves its pods as they are.
	InPlaceSetInvalidSpecReason = "InvalidSpec"

	// InPlaceSetNotScalingReason surfaces when the number of pods matches
	// spec.replicas.
	InPlaceSetNotScalingReason = "NotScaling"
)

// InPlaceSetSpec is the desired state of an InPlaceSet.
//
// +kubebuilder:validation:XValidation:rule="has(self.unit) == has(oldSelf.unit)",message="spec.unit cannot be added or removed after creation"
type InPlaceSetSpec struct {
	// replicas is the desired number of pods.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Replicas *int32 `json:"replicas,omitempty"` // A pointer, or 0 would be omitted and defaulted to 1.

	// selector selects the pods of this InPlaceSet. It must match the labels
	// of spec.template and cannot change after creation.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.selector is immutable"
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// template describes the pods. A change that only touches fields a pod
	// can take in place (such as container images and metadata) updates the
	// pods in place; any other change recreates them.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.metadata) || !has(self.metadata.annotations) || self.metadata.annotations.all(k, !k.startsWith('cafe.io/'))",message="spec.template.metadata.annotations: the cafe.io/ prefix is reserved for CAFE's control annotations (drain, migration, force delete); a template may not set them",fieldPath=".metadata.annotations"
	Template corev1.PodTemplateSpec `json:"template,omitzero"`

	// unit is the topology unit the pods are pinned to. It cannot change
	// after creation: a pod cannot move between nodes in place.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.unit is immutable"
	Unit *PodSetUnit `json:"unit,omitempty"`

	// updateStrategy says how pods move to a new revision.
	// +optional
	// +kubebuilder:default={}
	UpdateStrategy InPlaceSetUpdateStrategy `json:"updateStrategy,omitzero"`

	// endpoints makes CAFE publish the set's pods in the EndpointSlices of
	// a Service without a selector, instead of the EndpointSlice controller
	// publishing them from pod readiness: an in-place update then drains a
	// pod by taking it out of the set's slices, with no write to the pod
	// (docs/cafedeployment.md, "Endpoints CAFE writes"). While the Service
	// is missing or has a selector, the set drains through the readiness
	// gate as without this field, and its EndpointsPublished condition
	// says why.
	// +optional
	Endpoints *PodSetEndpoints `json:"endpoints,omitempty"`
}

// PodSetEndpoints names the Service whose endpoints CAFE writes for a pod
// set.
type PodSetEndpoints struct {
	// service is a Service of the set's namespace without a selector: CAFE
	// writes its EndpointSlices for the set's pods (managed-by
	// inplaceset.cafe.io, owned by the set), so kube-proxy, gateways and
	// anything else that reads EndpointSlices route to them as to pods
	// the EndpointSlice controller lists.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Service string `json:"service"`
}

// PodSetUnit is the node label that pins the pods of a pod set to one unit.
type PodSetUnit struct {
	// key is the node label key, such as topology.kubernetes.io/zone or
	// cafe.io/cell.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Key string `json:"key,omitempty"`

	// value is the node label value, the name of the unit.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Value string `json:"value,omitempty"`
}

// InPlaceSetUpdateStrategy says how the pods of an InPlaceSet move to a new
// revision.
type InPlaceSetUpdateStrategy struct {
	// partition is the number of pods that stay on the current (old)
	// revision. Unset or 0 updates every pod; a CafeDeployment lowers it
	// group by group.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Partition *int32 `json:"partition,omitempty"`

	// maxUnavailable is the number of pods that may be unavailable during an
	// update, as an integer or a percentage of spec.replicas.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? int(self) >= 0 : string(self).matches('^(100|[1-9]?[0-9])%$')",message="spec.updateStrategy.maxUnavailable must be an integer >= 0 or a percentage from 0% to 100%"
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`

	// minReadySeconds is how long a pod must be ready, without any container
	// crashing, to count as available.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`

	// paused stops updates before the next pod operation. Scaling goes on.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// InPlaceSetStatus is the observed state of an InPlaceSet.
type InPlaceSetStatus struct {
	// conditions describe the current state of the InPlaceSet. Known types
	// are Available, PodsUpToDate and Scaling.
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
	// spec.updateStrategy.minReadySeconds.
	// +optional
	AvailableReplicas *int32 `json:"availableReplicas,omitempty"`

	// updatedReplicas is the number of pods on updateRevision.
	// +optional
	UpdatedReplicas *int32 `json:"updatedReplicas,omitempty"`

	// updatedReadyReplicas is the number of pods on updateRevision that
	// serve: Ready with the gate open and, with spec.endpoints, listed
	// ready in the set's EndpointSlices.
	// +optional
	UpdatedReadyReplicas *int32 `json:"updatedReadyReplicas,omitempty"`

	// currentRevision is the revision of the pods below the partition.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CurrentRevision string `json:"currentRevision,omitempty"`

	// updateRevision is the revision built from the current spec.template.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	UpdateRevision string `json:"updateRevision,omitempty"`

	// selector is spec.selector in string form, for the scale subresource.
	// +optional
	// +kubebuilder:validation:MaxLength=10240
	Selector string `json:"selector,omitempty"`

	// collisionCount counts hash collisions between revisions; it is mixed
	// into the next revision name to make it unique.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CollisionCount *int32 `json:"collisionCount,omitempty"`
}

// InPlaceSet is CAFE's own pod set: it creates and owns pods directly and
// updates them in place where it can, so that a pod keeps its name, UID,
// node and IP. A CafeDeployment runs one InPlaceSet per topology unit.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=inplacesets,scope=Namespaced,shortName=ips,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Updated",type=integer,JSONPath=`.status.updatedReplicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Unit",type=string,JSONPath=`.spec.unit.value`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: it is the value of the cafe.io/inplaceset label on every pod"
type InPlaceSet struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the InPlaceSet.
	// +required
	Spec InPlaceSetSpec `json:"spec,omitzero"`

	// status is the observed state of the InPlaceSet.
	// +optional
	Status InPlaceSetStatus `json:"status,omitzero"`
}

// InPlaceSetList is a list of InPlaceSets.
//
// +kubebuilder:object:root=true
type InPlaceSetList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the InPlaceSets.
	Items []InPlaceSet `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &InPlaceSet{}, &InPlaceSetList{})
}
