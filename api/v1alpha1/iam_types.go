package v1alpha1

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IAMPermission is one of CAFE's named permissions: a bank's role is
// written in these, and each expands to the Kubernetes rules that grant it
// (docs/iam.md lists them).
//
// +kubebuilder:validation:Enum=apps.view;apps.edit;releases.view;releases.request;releases.approve;releases.operate;audit.read;deployments.operate;traffic.edit
type IAMPermission string

const (
	// PermAppsView reads apps, their revisions and CafeDeployments.
	PermAppsView IAMPermission = "apps.view"
	// PermAppsEdit creates and changes apps (each change records an
	// AppRevision) and their revisions.
	PermAppsEdit IAMPermission = "apps.edit"
	// PermReleasesView reads release orders and their actions.
	PermReleasesView IAMPermission = "releases.view"
	// PermReleasesRequest creates (and cancels) release orders.
	PermReleasesRequest IAMPermission = "releases.request"
	// PermReleasesApprove approves and rejects release orders.
	PermReleasesApprove IAMPermission = "releases.approve"
	// PermReleasesOperate starts, pauses, resumes, confirms, cancels and
	// rolls back release orders.
	PermReleasesOperate IAMPermission = "releases.operate"
	// PermAuditRead reads release orders, their actions and the public key
	// that verifies their audit trails (export and verify).
	PermAuditRead IAMPermission = "audit.read"
	// PermDeploymentsOperate confirms, pauses, resumes and rolls back
	// CafeDeployments directly (recorded under the user's name).
	PermDeploymentsOperate IAMPermission = "deployments.operate"
	// PermTrafficEdit writes TrafficAnalyses.
	PermTrafficEdit IAMPermission = "traffic.edit"
)

// IAM labels and names.
const (
	// IAMManagedLabel (value IAMManagedValue) marks the RBAC objects CAFE
	// projects from IAMRoles and IAMRoleBindings; CAFE watches only these,
	// and corrects any change to them.
	IAMManagedLabel = "iam.cafe.io/managed-by"
	IAMManagedValue = "cafe"
	// IAMRoleLabel names the IAMRole a ClusterRole projects.
	IAMRoleLabel = "iam.cafe.io/role"
	// IAMBindingLabel names the IAMRoleBinding a binding projects.
	IAMBindingLabel = "iam.cafe.io/binding"
	// IAMRBACPrefix starts the names of the ClusterRoles and bindings CAFE
	// projects.
	IAMRBACPrefix = "cafe-iam:"
	// DirectoryPrefix starts the Kubernetes user and group names of
	// directory users and groups (in the credentials CAFE issues and the
	// bindings it projects): a directory group named system:masters is
	// dir:system:masters in Kubernetes, which grants nothing.
	DirectoryPrefix = "dir:"
)

// IAM condition types and reasons.
const (
	// IAMReadyCondition is True once the RBAC objects match the spec.
	IAMReadyCondition = "Ready"

	IAMReasonProjected          = "Projected"
	IAMReasonRoleNotFound       = "RoleNotFound"
	IAMReasonIncludeCycle       = "IncludeCycle"
	IAMReasonNoNamespaceMatched = "NoNamespaceMatched"
	IAMReasonRBACError          = "RBACError"
)

// IAMRole (a bank role: developer, release approver, auditor) is a set of
// permissions, written as CAFE's named permissions, plain Kubernetes rules,
// and other roles it includes. CAFE projects each onto one ClusterRole,
// cafe-iam:<name>, that holds the union of them all.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=iamroles,scope=Cluster,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Display",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="ClusterRole",type=string,JSONPath=`.status.clusterRole`
// +kubebuilder:printcolumn:name="Rules",type=integer,JSONPath=`.status.ruleCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name: at most 63 characters (it labels the ClusterRole)"
type IAMRole struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the role's permissions.
	// +required
	Spec IAMRoleSpec `json:"spec,omitzero"`

	// status is the projection's state.
	// +optional
	Status IAMRoleStatus `json:"status,omitzero"`
}

// IAMRoleSpec is what a role allows.
//
// +kubebuilder:validation:XValidation:rule="has(self.permissions) || has(self.rules) || has(self.includes)",message="spec: a role needs permissions, rules or includes"
type IAMRoleSpec struct {
	// displayName is the role's name in the bank's terms.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// description says what the role is for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// permissions are CAFE's named permissions the role grants.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	Permissions []IAMPermission `json:"permissions,omitempty"`

	// rules are Kubernetes rules the role grants as they are.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:XValidation:rule="size(self.verbs) > 0",message="spec.rules[].verbs: at least one verb"
	// +kubebuilder:validation:items:XValidation:rule="has(self.nonResourceURLs) != (has(self.resources) || has(self.apiGroups))",message="spec.rules[]: either nonResourceURLs, or apiGroups and resources"
	Rules []rbacv1.PolicyRule `json:"rules,omitempty"`

	// includes are other IAMRoles whose permissions this one has too (as
	// Rancher's role templates include others); cycles are refused.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	Includes []string `json:"includes,omitempty"`
}

// IAMRoleStatus is where the role's projection stands.
type IAMRoleStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// clusterRole is the ClusterRole CAFE keeps for the role.
	// +optional
	ClusterRole string `json:"clusterRole,omitempty"`
	// ruleCount is the number of rules of that ClusterRole.
	// +optional
	RuleCount int32 `json:"ruleCount,omitempty"`
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IAMSubjectKind is a directory group or user.
//
// +kubebuilder:validation:Enum=Group;User
type IAMSubjectKind string

const (
	IAMSubjectGroup IAMSubjectKind = "Group"
	IAMSubjectUser  IAMSubjectKind = "User"
)

// IAMSubject is a group or a user of the directory, by its directory name.
type IAMSubject struct {
	// kind is Group (preferred: bindings stay few however many people) or
	// User.
	// +required
	Kind IAMSubjectKind `json:"kind"`
	// name is the directory's name of the group or user (its cn or uid).
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9._-]{0,63}$`
	Name string `json:"name"`
}

// IAMScope is where a binding grants its role: the whole cluster, the
// namespaces listed, or the namespaces a selector matches (as they come
// and go).
//
// +kubebuilder:validation:XValidation:rule="[has(self.cluster) && self.cluster, has(self.namespaces), has(self.namespaceSelector)].filter(x, x).size() == 1",message="scope: exactly one of cluster, namespaces or namespaceSelector"
type IAMScope struct {
	// cluster grants the role in every namespace and on cluster-scoped
	// resources.
	// +optional
	Cluster bool `json:"cluster,omitempty"`
	// namespaces lists the namespaces.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`
	// namespaceSelector selects namespaces by their labels (a team's:
	// team=payments).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// IAMRoleBinding grants a role to directory groups and users within a
// scope. CAFE projects it onto one ClusterRoleBinding (cluster scope) or
// one RoleBinding per namespace in scope, each naming the groups, never
// one per user.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=iamrolebindings,scope=Cluster,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.role`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.namespaceCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name: at most 63 characters (it labels the bindings)"
type IAMRoleBinding struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is who gets which role where.
	// +required
	Spec IAMRoleBindingSpec `json:"spec,omitzero"`

	// status is the projection's state.
	// +optional
	Status IAMRoleBindingStatus `json:"status,omitzero"`
}

// IAMRoleBindingSpec is who gets which role where.
type IAMRoleBindingSpec struct {
	// role is the IAMRole granted.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Role string `json:"role"`

	// subjects are the directory groups and users granted the role.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Subjects []IAMSubject `json:"subjects"`

	// scope is where the role is granted.
	// +required
	Scope IAMScope `json:"scope"`
}

// IAMRoleBindingStatus is where the binding's projection stands.
type IAMRoleBindingStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// namespaceCount is the number of namespaces the binding grants its
	// role in (0 for cluster scope).
	// +optional
	NamespaceCount int32 `json:"namespaceCount,omitempty"`
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IAMRoleList is a list of IAMRoles.
//
// +kubebuilder:object:root=true
type IAMRoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IAMRole `json:"items"`
}

// IAMRoleBindingList is a list of IAMRoleBindings.
//
// +kubebuilder:object:root=true
type IAMRoleBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IAMRoleBinding `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &IAMRole{}, &IAMRoleList{}, &IAMRoleBinding{}, &IAMRoleBindingList{})
}
