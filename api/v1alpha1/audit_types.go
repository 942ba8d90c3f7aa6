package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuditEntry is one record of an audit trail: who did what to which
// target, when, and what changed. Entries form a hash chain (each hash
// covers the entry, the object it belongs to — namespace, name and UID — and
// the previous entry's hash) and each hash is signed with an ed25519 key
// only CAFE's controller holds, so an entry altered, removed, reordered or
// copied from another object after the fact is detected
// (`cafe audit verify`).
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

	// actorGroups are the human actor's groups as the API server
	// authenticated them (a directory user's dir:<group>s), so the record
	// says in which capacity they acted; empty for the controller.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	ActorGroups []string `json:"actorGroups,omitempty"`

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

	// keyID names the key that signed the entry: the first 16 hex digits of
	// the SHA-256 of its public key (`cafe audit export-keys`).
	// +optional
	// +kubebuilder:validation:MaxLength=16
	KeyID string `json:"keyID,omitempty"`
}

// AuditHead is the signed statement of how long a trail is: its number of
// entries and the hash of the last one, bound to the object it belongs to.
// The API server lets it only move forward (see the rules on ReleaseOrder),
// so a trail cannot be shortened or emptied through the status subresource,
// and a verifier that holds the head detects a trail shortened anywhere
// else (an export, etcd).
type AuditHead struct {
	// count is the number of entries in the trail.
	// +required
	// +kubebuilder:validation:Minimum=1
	Count int64 `json:"count"`

	// hash is the last entry's hash.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Hash string `json:"hash"`

	// keyID names the key that signed the head.
	// +required
	// +kubebuilder:validation:MaxLength=16
	KeyID string `json:"keyID"`

	// signature is the base64 ed25519 signature of the head's digest
	// (namespace, name, UID, count and hash).
	// +required
	// +kubebuilder:validation:MaxLength=128
	Signature string `json:"signature"`
}
