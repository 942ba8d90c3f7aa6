package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReleaseActionType is what a person asks of a release order. Each is also
// a verb on the resource releaseorders that RBAC grants (like the approve
// verb of CertificateSigningRequests): who may create a ReleaseAction of a
// type is who may <verb> the order.
// +kubebuilder:validation:Enum=Approve;Reject;Start;Pause;Resume;Confirm;Cancel;Rollback
type ReleaseActionType string

const (
	ActionApprove  ReleaseActionType = "Approve"
	ActionReject   ReleaseActionType = "Reject"
	ActionStart    ReleaseActionType = "Start"
	ActionPause    ReleaseActionType = "Pause"
	ActionResume   ReleaseActionType = "Resume"
	ActionConfirm  ReleaseActionType = "Confirm"
	ActionCancel   ReleaseActionType = "Cancel"
	ActionRollback ReleaseActionType = "Rollback"
)

// ReleaseActionTypes lists every action type.
var ReleaseActionTypes = []ReleaseActionType{ActionApprove, ActionReject, ActionStart, ActionPause, ActionResume, ActionConfirm, ActionCancel, ActionRollback}

// ReleaseOrderLabel marks a ReleaseAction with the order it acts on (see
// ReleaseOrderLabelValue for names longer than a label value).
const ReleaseOrderLabel = "cafe.io/release-order"

// ReleaseAction is one act of a person on a ReleaseOrder: an approval, a
// start, a pause, a confirmation... It is created, never changed. CAFE's
// admission webhook writes spec.actor from the user the API server
// authenticated, checks with a SubjectAccessReview that this user may
// <action> the order (a verb on releaseorders), and refuses an action the
// order's phase does not allow. The controller processes an order's actions
// in creation order, each exactly once, and records the result and an
// audit entry in the order's status.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=releaseactions,scope=Namespaced,shortName=ract,categories=cafe
// +kubebuilder:printcolumn:name="Order",type=string,JSONPath=`.spec.order`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Actor",type=string,JSONPath=`.spec.actor`
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.app`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReleaseAction struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the action; it cannot change.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a ReleaseAction is a record; create a new one"
	Spec ReleaseActionSpec `json:"spec,omitzero"`
}

// ReleaseActionSpec is one action on an order.
type ReleaseActionSpec struct {
	// order is the ReleaseOrder in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Order string `json:"order"`

	// action is what is asked.
	// +required
	Action ReleaseActionType `json:"action"`

	// app limits a Confirm to one app of the order (default: every app
	// waiting for a confirmation).
	// +optional
	// +kubebuilder:validation:MaxLength=40
	App string `json:"app,omitempty"`

	// comment is the person's reason, kept in the audit trail.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Comment string `json:"comment,omitempty"`

	// actor is the user the API server authenticated for the request that
	// created the action. CAFE's admission webhook sets it; a client
	// cannot.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Actor string `json:"actor,omitempty"`

	// actorGroups are the actor's groups, as authenticated (for
	// spec.approval.approverGroups).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	ActorGroups []string `json:"actorGroups,omitempty"`

	// admittedAt is when CAFE's admission webhook admitted the action,
	// strictly increasing within a webhook server: the controller processes
	// an order's actions in this order. CAFE's admission webhook sets it; a
	// client cannot.
	// +optional
	AdmittedAt *metav1.MicroTime `json:"admittedAt,omitempty"`

	// seal is CAFE's admission webhook's HMAC-SHA256, with a key only CAFE
	// holds, over the action, its actor, actorGroups and admittedAt: the
	// controller takes no action whose seal does not verify, so a cluster
	// without CAFE's webhooks cannot forge an actor. CAFE's admission
	// webhook sets it; a client cannot.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Seal string `json:"seal,omitempty"`
}

// ReleaseActionList is a list of ReleaseActions.
//
// +kubebuilder:object:root=true
type ReleaseActionList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ReleaseActions.
	Items []ReleaseAction `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ReleaseAction{}, &ReleaseActionList{})
}
