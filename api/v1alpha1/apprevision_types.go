package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReleaseOutcome is how the last release of an AppRevision ended.
// +kubebuilder:validation:Enum=Releasing;Succeeded;Failed;RolledBack;Superseded
type ReleaseOutcome string

const (
	// ReleaseOutcomeReleasing means the revision is published and its
	// release has not finished.
	ReleaseOutcomeReleasing ReleaseOutcome = "Releasing"

	// ReleaseOutcomeSucceeded means every pod ran the revision when its
	// release finished.
	ReleaseOutcomeSucceeded ReleaseOutcome = "Succeeded"

	// ReleaseOutcomeFailed means the release stopped and needed a person.
	ReleaseOutcomeFailed ReleaseOutcome = "Failed"

	// ReleaseOutcomeRolledBack means an earlier revision was published in
	// its place (a rollback), whether or not its own release had finished.
	ReleaseOutcomeRolledBack ReleaseOutcome = "RolledBack"

	// ReleaseOutcomeSuperseded means a later revision was published before
	// this one's release finished.
	ReleaseOutcomeSuperseded ReleaseOutcome = "Superseded"
)

// AppRevision is an immutable snapshot of a CafeAppService: its pod
// template, Service and configuration contents, named <app>-r<N>. CAFE
// records one whenever the app's template, service or config changes to a
// content no revision holds yet; the API server rejects any change to its
// spec. Publishing it (spec.publishedRevision of the app) releases it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=apprevisions,scope=Namespaced,shortName=arev,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.app`
// +kubebuilder:printcolumn:name="Number",type=integer,JSONPath=`.spec.number`
// +kubebuilder:printcolumn:name="Hash",type=string,JSONPath=`.spec.hash`
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=`.status.outcome`
// +kubebuilder:printcolumn:name="Published-By",type=string,JSONPath=`.status.publishedBy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.startsWith(self.spec.app + '-r')",message="metadata.name must be <spec.app>-r<N>"
type AppRevision struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the snapshot; it cannot change.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: an AppRevision is a snapshot; change the CafeAppService to record a new revision"
	Spec AppRevisionSpec `json:"spec,omitzero"`

	// status records the revision's releases.
	// +optional
	Status AppRevisionStatus `json:"status,omitzero"`
}

// AppRevisionSpec is the content of a revision.
type AppRevisionSpec struct {
	// app is the CafeAppService the revision belongs to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	App string `json:"app,omitempty"`

	// number is N in <app>-r<N>; numbers of an app only increase.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	Number int64 `json:"number,omitempty"`

	// hash is the hash of template, service, config and classic artifact;
	// two revisions of
	// an app never share it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Hash string `json:"hash,omitempty"`

	// template is the app's pod template at this revision.
	// +required
	Template corev1.PodTemplateSpec `json:"template,omitzero"`

	// service is the app's Service at this revision.
	// +optional
	Service AppServiceSpec `json:"service,omitzero"`

	// config is the app's configuration at this revision, contents
	// included.
	// +optional
	Config AppConfig `json:"config,omitzero"`

	// classicArtifact is the package the app's classic units run at this
	// revision.
	// +optional
	ClassicArtifact *ClassicArtifact `json:"classicArtifact,omitempty"`

	// configMapName is the immutable ConfigMap holding config, which the
	// revision's pods reference. Revisions with the same config contents
	// share the ConfigMap of the first of them (<app>-r<N>-config), so that
	// a release that changes only images keeps the pods in place. Empty
	// when config is empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ConfigMapName string `json:"configMapName,omitempty"`
}

// AppRevisionStatus records the releases of a revision.
type AppRevisionStatus struct {
	// outcome is how the revision's last release ended; empty when it was
	// never published.
	// +optional
	Outcome ReleaseOutcome `json:"outcome,omitempty"`

	// publishedAt is when the revision was last published.
	// +optional
	PublishedAt *metav1.Time `json:"publishedAt,omitempty"`

	// publishedBy is the authenticated user who last published it, as CAFE's
	// admission webhook recorded it on the app.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	PublishedBy string `json:"publishedBy,omitempty"`

	// finishedAt is when its last release reached its outcome.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// lastSucceededAt is when a release of the revision last succeeded; a
	// rollback goes only to revisions that have one.
	// +optional
	LastSucceededAt *metav1.Time `json:"lastSucceededAt,omitempty"`

	// message explains the outcome.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// AppRevisionList is a list of AppRevisions.
//
// +kubebuilder:object:root=true
type AppRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the AppRevisions.
	Items []AppRevision `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &AppRevision{}, &AppRevisionList{})
}
