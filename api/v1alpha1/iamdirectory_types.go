package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IAMPasswordHashKey is the key, in an IAMUser's password Secret, of the
// bcrypt hash of the user's password (`cafe iam hash-password`).
const IAMPasswordHashKey = "bcrypt"

// IAMUser is a person of CAFE's own directory: the source of users and
// groups for installations without LDAP or Active Directory, and for tests.
// The login service checks the user's password against a bcrypt hash kept
// in a Secret of CAFE's namespace (never in this object: whoever may read
// users must not get hashes to crack), and the user's groups are the
// IAMGroups that list them. Both feed the same mapping as the directory's:
// the credential names dir:<user> in dir:<group>s.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=iamusers,scope=Cluster,categories=cafe
// +kubebuilder:printcolumn:name="Display",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z][a-z0-9.-]{0,63}$')",message="metadata.name: a directory name: a lowercase letter, then up to 63 lowercase letters, digits, '.' or '-'"
type IAMUser struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata; the name is the login name.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the user's account.
	// +required
	Spec IAMUserSpec `json:"spec,omitzero"`
}

// IAMUserSpec is a user's account.
type IAMUserSpec struct {
	// displayName is the person's name.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// passwordSecretName names the Secret, in CAFE's namespace, whose key
	// "bcrypt" holds the bcrypt hash of the user's password.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	PasswordSecretName string `json:"passwordSecretName"`

	// disabled locks the account: it can neither log in nor renew a
	// credential (its current credential lapses within a token's
	// lifetime).
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// IAMGroup is a group of CAFE's own directory: its members are IAMUsers by
// name. IAMRoleBindings name it as they name a directory group.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=iamgroups,scope=Cluster,categories=cafe
// +kubebuilder:printcolumn:name="Display",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Members",type=string,JSONPath=`.spec.members`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z][a-z0-9.-]{0,63}$')",message="metadata.name: a directory name: a lowercase letter, then up to 63 lowercase letters, digits, '.' or '-'"
type IAMGroup struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata; the name is the group's.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the group's membership.
	// +required
	Spec IAMGroupSpec `json:"spec,omitzero"`
}

// IAMGroupSpec is a group's membership.
type IAMGroupSpec struct {
	// displayName is the group's name in the bank's terms.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// members are the IAMUsers in the group, by name. A name with no
	// IAMUser grants nothing (nobody can log in as it).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5000
	// +kubebuilder:validation:items:Pattern=`^[a-z][a-z0-9.-]{0,63}$`
	Members []string `json:"members,omitempty"`
}

// IAMUserList is a list of IAMUsers.
//
// +kubebuilder:object:root=true
type IAMUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IAMUser `json:"items"`
}

// IAMGroupList is a list of IAMGroups.
//
// +kubebuilder:object:root=true
type IAMGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IAMGroup `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &IAMUser{}, &IAMUserList{}, &IAMGroup{}, &IAMGroupList{})
}
