package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuditEntry is one record of an audit trail: who did what to which
// target, when, and what changed. Entries form a hash chain (each hash
// covers the entry and the previous entry's hash) and each hash is signed
// with an ed25519 key only CAFE's controller holds, so an entry altered,
// removed or reordered after the fact is detected (`cafe audit verify`).
type AuditEntry struct {
	// seq numbers the entries of a trail from 1, without gaps.
	// +required
	// +kubebuilder:validation:Minimum=1
	Seq int64 `json:"seq"`

	// time is when the change happened (microsecond precision).
	// +required
	Time metav1.MicroTime `json:"time"`

	// actor is the identity the API server authenticated for a human
	// action, or the controller for changes it made on its own.
	// +required
	// +kubebuilder:validation:MaxLength=256
	Actor string `json:"actor"`

	// action names what happened (e.g. Approve, Start, AppStarted).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Action string `json:"action"`

	// target is what the action was about (the order, or one app of it).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Target string `json:"target,omitempty"`

	// before and after are the state before and after the change.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Before string `json:"before,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=256
	After string `json:"after,omitempty"`

	// reason says why (a comment given with a human action, or the
	// controller's explanation).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`

	// prevHash is the previous entry's hash (empty for the first entry).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	PrevHash string `json:"prevHash,omitempty"`

	// hash is the hex SHA-256 of this entry's fields and prevHash.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Hash string `json:"hash"`

	// signature is the base64 ed25519 signature of hash.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Signature string `json:"signature"`
}
