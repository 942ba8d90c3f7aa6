package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CafeAppService condition types and reasons.
const (
	// AppReadyCondition is True when the published revision has been
	// released to every pod and the water level is met.
	AppReadyCondition = "Ready"

	// AppReadyReason surfaces when the published revision runs everywhere.
	AppReadyReason = "Ready"

	// AppNothingPublishedReason surfaces while spec.publishedRevision is
	// empty: the app has revisions but no pods yet.
	AppNothingPublishedReason = "NothingPublished"

	// AppReleasingReason surfaces (on Ready False and Releasing True) while
	// the published revision is being released.
	AppReleasingReason = "Releasing"

	// AppNotAvailableReason surfaces when fewer pods than the water level are
	// available.
	AppNotAvailableReason = "NotAvailable"

	// AppReleaseFailedReason surfaces when the release of the published
	// revision stopped and needs a person.
	AppReleaseFailedReason = "ReleaseFailed"

	// AppInvalidPublishReason surfaces when spec.publishedRevision names a
	// revision that does not exist or is not one of this app's. Nothing is
	// released; the admission webhook normally refuses such a write.
	AppInvalidPublishReason = "InvalidPublishedRevision"
)

const (
	// AppReleasingCondition is True while the owned CafeDeployment releases
	// the published revision.
	AppReleasingCondition = "Releasing"

	// AppNotReleasingReason surfaces when no release is under way.
	AppNotReleasingReason = "NotReleasing"

	// AppWaitingReason surfaces when the release waits for a confirmation or
	// is paused.
	AppWaitingReason = "Waiting"
)

// Notes on the CEL rules of this file (kept out of the doc comments, which
// become the CRD's descriptions):
//   - The app's name becomes the name of a Service (a DNS-1035 label) and
//     prefixes the names of its revisions (<app>-r<N>) and their ConfigMaps
//     (<app>-r<N>-config), which pod labels carry, so it is limited to 40
//     characters.
//   - spec.workload repeats the cross-field rules of CafeDeploymentSpec for
//     the CafeDeployment the app owns; the rules that CEL cannot express
//     (custom groups covering every replica) and the ones that need the pod
//     template (config env names and the config volume colliding with the
//     template's) are left to the validating webhook.

// CafeAppService describes an application as a whole: the pod template, the
// Service that carries its north-south traffic, its configuration and its
// workload settings. Every change of template, service or config makes CAFE
// record an immutable AppRevision; spec.publishedRevision says which
// revision runs.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=cafeappservices,scope=Namespaced,shortName=app,categories=cafe
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Latest",type=string,JSONPath=`.status.latestRevision`
// +kubebuilder:printcolumn:name="Published",type=string,JSONPath=`.spec.publishedRevision`
// +kubebuilder:printcolumn:name="Last-Successful",type=string,JSONPath=`.status.lastSuccessfulRevision`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Releasing",type=string,JSONPath=`.status.conditions[?(@.type=="Releasing")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.workload) || !has(self.spec.workload.topology) || !has(self.spec.workload.topology.values) || self.spec.workload.topology.values.all(u, size(self.metadata.name) + 1 + size(u) <= (has(self.spec.workload.podSetType) && self.spec.workload.podSetType == 'StatefulSet' ? 52 : 63))",message="metadata.name and spec.workload.topology.values: each unit's pod set is named <metadata.name>-<unit>, a label value of at most 63 characters (52 with podSetType StatefulSet); shorten the name or the unit",fieldPath=".spec.workload.topology.values"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label of at most 40 characters (it names the app's Service and prefixes its revisions and ConfigMaps)"
type CafeAppService struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the app.
	// +required
	Spec CafeAppServiceSpec `json:"spec,omitzero"`

	// status is the observed state of the app.
	// +optional
	Status CafeAppServiceStatus `json:"status,omitzero"`
}

// CafeAppServiceSpec is the desired state of a CafeAppService.
//
// +kubebuilder:validation:XValidation:rule="!has(self.workload.endpoints) || self.workload.endpoints != 'CAFE' || (has(self.service) && has(self.service.ports) && size(self.service.ports) > 0)",message="spec.workload.endpoints CAFE needs spec.service.ports: CAFE writes the endpoints of the app's Service, and an app without ports has none",fieldPath=".workload.endpoints"
// +kubebuilder:validation:XValidation:rule="!has(self.workload.endpoints) || self.workload.endpoints != 'CAFE' || !has(self.service) || !has(self.service.publishInRegistry) || !self.service.publishInRegistry",message="spec.workload.endpoints CAFE cannot be combined with spec.service.publishInRegistry: the registry finds the pods through the Service's selector",fieldPath=".workload.endpoints"
// +kubebuilder:validation:XValidation:rule="has(self.classicArtifact) == (has(self.workload.classicUnits) && size(self.workload.classicUnits) > 0)",message="spec.classicArtifact and spec.workload.classicUnits go together: classic units run the classic artifact",fieldPath=".classicArtifact"
type CafeAppServiceSpec struct {
	// template describes the app's pods. Editing it records a new
	// AppRevision; it does not release anything by itself.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.metadata) || !has(self.metadata.annotations) || self.metadata.annotations.all(k, !k.startsWith('cafe.io/'))",message="spec.template.metadata.annotations: the cafe.io/ prefix is reserved for CAFE's control annotations (drain, migration, force delete); a template may not set them",fieldPath=".metadata.annotations"
	Template corev1.PodTemplateSpec `json:"template,omitzero"`

	// service describes the Service that carries the app's north-south
	// traffic. Its selector is CAFE's: it selects the app's pods of every
	// revision, so a release never changes the Service's identity or
	// address.
	// +optional
	Service AppServiceSpec `json:"service,omitzero"`

	// config is the app's configuration. Each revision snapshots its
	// contents into an immutable ConfigMap that the revision's pods read, so
	// a rollback restores the configuration too.
	// +optional
	Config AppConfig `json:"config,omitzero"`

	// classicArtifact is the package the app's classic units run (those of
	// workload.classicUnits, on classic hosts): part of the app's content,
	// so editing it records a new AppRevision, and the revision's config
	// env is given to the instances' processes.
	// +optional
	ClassicArtifact *ClassicArtifact `json:"classicArtifact,omitempty"`

	// workload is passed to the CafeDeployment the app owns: replicas,
	// podSetType, topology and release strategy.
	// +required
	Workload AppWorkload `json:"workload,omitzero"`

	// publishedRevision is the AppRevision (<app>-r<N>) that should run.
	// Empty means nothing is published yet. Publishing is an explicit act
	// (`cafe app publish`, `cafe app rollback`, or a release order), never a
	// side effect of editing the template. Who set it is recorded by CAFE
	// in the annotation cafe.io/published-by.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?-r[1-9][0-9]*$')",message="spec.publishedRevision must name an AppRevision of the form <app>-r<N>"
	PublishedRevision string `json:"publishedRevision,omitempty"`

	// revisionHistoryLimit is how many AppRevisions are kept. The published
	// revision, the last successful one and revisions held by a release
	// order are kept in addition.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
}

// AppServiceSpec is the part of a Service an app declares. CAFE fills in
// the selector; the cluster allocates the ClusterIP once and keeps it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.loadBalancerSourceRanges) || size(self.loadBalancerSourceRanges) == 0 || (has(self.type) && self.type == 'LoadBalancer')",message="spec.service.loadBalancerSourceRanges is only allowed when spec.service.type is LoadBalancer",fieldPath=".loadBalancerSourceRanges"
// +kubebuilder:validation:XValidation:rule="!has(self.externalTrafficPolicy) || (has(self.type) && self.type in ['LoadBalancer', 'NodePort'])",message="spec.service.externalTrafficPolicy is only allowed when spec.service.type is LoadBalancer or NodePort",fieldPath=".externalTrafficPolicy"
// +kubebuilder:validation:XValidation:rule="!has(self.ports) || self.ports.all(p, !has(p.nodePort) || (has(self.type) && self.type in ['LoadBalancer', 'NodePort']))",message="spec.service.ports[].nodePort is only allowed when spec.service.type is LoadBalancer or NodePort",fieldPath=".ports"
type AppServiceSpec struct {
	// type is ClusterIP, NodePort or LoadBalancer.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// ports are the Service's ports. An app without ports gets no Service.
	// +optional
	// +listType=map
	// +listMapKey=port
	// +listMapKey=protocol
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, (has(q.name) ? q.name : '') == (has(p.name) ? p.name : '')))",message="spec.service.ports[].name must be unique"
	// +kubebuilder:validation:XValidation:rule="size(self) <= 1 || self.all(p, has(p.name) && p.name != '')",message="spec.service.ports[].name is required when there is more than one port"
	Ports []AppServicePort `json:"ports,omitempty"`

	// sessionAffinity is None or ClientIP.
	// +optional
	// +kubebuilder:default=None
	// +kubebuilder:validation:Enum=None;ClientIP
	SessionAffinity corev1.ServiceAffinity `json:"sessionAffinity,omitempty"`

	// sessionAffinityTimeoutSeconds is how long ClientIP affinity sticks
	// (default: the Service default of 3 hours).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	SessionAffinityTimeoutSeconds *int32 `json:"sessionAffinityTimeoutSeconds,omitempty"`

	// externalTrafficPolicy is Cluster or Local, for LoadBalancer and
	// NodePort Services.
	// +optional
	// +kubebuilder:validation:Enum=Cluster;Local
	ExternalTrafficPolicy corev1.ServiceExternalTrafficPolicy `json:"externalTrafficPolicy,omitempty"`

	// loadBalancerSourceRanges restricts the client addresses a
	// LoadBalancer accepts (CIDRs).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`

	// publishInRegistry registers the app's pods and classic instances in
	// CAFE's east-west service registry, where other apps find them (the
	// Service gets the label registry.cafe.io/publish: "true"; see
	// docs/classic-hosts.md). A release then drains an instance from the
	// registry too: it stops only once every consumer has applied its
	// deregistration.
	// +optional
	PublishInRegistry bool `json:"publishInRegistry,omitempty"`
}

// AppServicePort is one port of the app's Service.
type AppServicePort struct {
	// name of the port; required when there is more than one.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// protocol is TCP, UDP or SCTP.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`

	// port is the port the Service listens on.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// targetPort is the container port number traffic goes to (default:
	// port).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	TargetPort int32 `json:"targetPort,omitempty"`

	// nodePort pins the node port of a NodePort or LoadBalancer Service
	// (default: allocated by the cluster).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	NodePort int32 `json:"nodePort,omitempty"`
}

// AppConfig is an app's configuration: environment variables and files.
//
// +kubebuilder:validation:XValidation:rule="!has(self.env) || !has(self.files) || self.env.all(k, !(k in self.files))",message="spec.config: a key cannot be both in env and in files"
type AppConfig struct {
	// env are environment variables (name to value) that every container
	// of the app reads from the revision's ConfigMap.
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="spec.config.env: each name must be a C identifier (letters, digits and _, not starting with a digit)"
	Env map[string]string `json:"env,omitempty"`

	// files are files (name to content) mounted read-only in every
	// container of the app, under mountPath.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && k != '.' && k != '..')",message="spec.config.files: each name must consist of letters, digits, '-', '_' or '.'"
	Files map[string]string `json:"files,omitempty"`

	// mountPath is the directory the files are mounted at.
	// +optional
	// +kubebuilder:default=/etc/cafe/config
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="spec.config.mountPath must be an absolute path"
	MountPath string `json:"mountPath,omitempty"`
}

// AppWorkload is what the app passes to the CafeDeployment it owns.
//
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas == 0 || !has(self.strategy) || !has(self.strategy.batchSize) || (has(self.strategy.groups) && size(self.strategy.groups) > 0) || type(self.strategy.batchSize) != int || int(self.strategy.batchSize) < 1 || (has(self.strategy.upgradeType) && self.strategy.upgradeType == 'Batch' ? (self.replicas + int(self.strategy.batchSize) - 1) / int(self.strategy.batchSize) : 1 + (self.replicas + int(self.strategy.batchSize) - 2) / int(self.strategy.batchSize)) + (has(self.strategy.groupOrder) && self.strategy.groupOrder == 'UnitByUnit' && has(self.topology) && has(self.topology.values) ? size(self.topology.values) - 1 : 0) <= 512",message="spec.workload.strategy.batchSize: the release would need more than 512 groups, all that status.release.groups can hold (the beta group, then replicas / batchSize batches, and with groupOrder UnitByUnit one more per unit after the first); raise batchSize, use a percentage, or lower spec.workload.replicas",fieldPath=".strategy.batchSize"
// +kubebuilder:validation:XValidation:rule="!has(self.topology.unitReplicas) || !has(self.replicas) || self.topology.unitReplicas.filter(u, type(self.topology.unitReplicas[u]) in [int]).map(u, int(self.topology.unitReplicas[u])).sum() <= self.replicas",message="spec.workload.topology.unitReplicas: the integer entries add up to more than spec.workload.replicas",fieldPath=".topology.unitReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.minAvailable) || !has(self.replicas) || !(type(self.strategy.minAvailable) in [int]) || int(self.strategy.minAvailable) <= self.replicas",message="spec.workload.strategy.minAvailable must not exceed spec.workload.replicas",fieldPath=".strategy.minAvailable"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.groups) || self.strategy.groups.all(g, !has(g.units) || g.units.all(u, u in self.topology.values))",message="spec.workload.strategy.groups[].units: unknown unit; every unit must be listed in spec.workload.topology.values",fieldPath=".strategy.groups"
// +kubebuilder:validation:XValidation:rule="!has(self.classicUnits) || self.classicUnits.all(u, u in self.topology.values)",message="spec.workload.classicUnits: unknown unit; every classic unit must be listed in spec.workload.topology.values",fieldPath=".classicUnits"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || self.endpoints != 'CAFE' || !has(self.podSetType) || self.podSetType == 'InPlaceSet'",message="spec.workload.endpoints CAFE is only allowed when spec.workload.podSetType is InPlaceSet",fieldPath=".endpoints"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || self.endpoints != 'CAFE' || !has(self.classicUnits) || size(self.classicUnits) == 0",message="spec.workload.endpoints CAFE cannot be combined with spec.workload.classicUnits: classic instances are published from the Service's selector",fieldPath=".endpoints"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || self.endpoints != 'CAFE' || !has(self.strategy) || !has(self.strategy.traffic)",message="spec.workload.endpoints CAFE cannot be combined with spec.workload.strategy.traffic: traffic steps steer through Services that select the pods",fieldPath=".endpoints"
type AppWorkload struct {
	// replicas is the desired number of pods over all units.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	Replicas *int32 `json:"replicas,omitempty"`

	// podSetType is the kind of pod set run in each unit; it cannot change
	// after creation.
	// +optional
	// +kubebuilder:default=InPlaceSet
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.workload.podSetType is immutable"
	PodSetType PodSetType `json:"podSetType,omitempty"`

	// topology says which units the pods are spread over.
	// +required
	Topology Topology `json:"topology,omitzero"`

	// strategy says how publishing a revision moves pods to it: groups,
	// beta, pause, confirmation and the water level.
	// +optional
	// +kubebuilder:default={}
	Strategy CafeDeploymentStrategy `json:"strategy,omitzero"`

	// classicUnits are units of topology.values that run the app on
	// classic hosts (spec.classicArtifact) instead of pods: the
	// CafeDeployment's spec.classic.units, fixed once it exists.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	ClassicUnits []string `json:"classicUnits,omitempty"`

	// endpoints says who lists the app's pods in its Service's
	// EndpointSlices. Selector (the default): the Service selects the
	// pods and the EndpointSlice controller lists them by readiness; a
	// release drains a pod by closing its readiness gate (four pod writes
	// per in-place update). CAFE: the Service has no selector and CAFE
	// writes its EndpointSlices (the CafeDeployment's spec.endpoints); a
	// release drains a pod by taking it out of them (two pod writes, about
	// half the control plane's work; docs/cafedeployment.md, "Endpoints
	// CAFE writes"). CAFE needs podSetType InPlaceSet and a Service (ports),
	// and excludes classic units, traffic steps and publishing in the
	// registry. Fixed once the app exists: switching a live Service
	// between the two would leave it without endpoints for a moment.
	// +optional
	// +kubebuilder:default=Selector
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.workload.endpoints is immutable: serve the app through a new app to switch"
	Endpoints AppEndpoints `json:"endpoints,omitempty"`
}

// AppEndpoints says who writes an app's EndpointSlices.
// +kubebuilder:validation:Enum=Selector;CAFE
type AppEndpoints string

const (
	// AppEndpointsSelector: the Service selects the app's pods; the
	// EndpointSlice controller lists them by readiness.
	AppEndpointsSelector AppEndpoints = "Selector"
	// AppEndpointsCAFE: the Service has no selector; CAFE writes its
	// EndpointSlices for the app's pods.
	AppEndpointsCAFE AppEndpoints = "CAFE"
)

// CafeAppServiceStatus is the observed state of a CafeAppService.
type CafeAppServiceStatus struct {
	// conditions describe the app: Ready and Releasing.
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

	// latestRevision is the AppRevision that holds the current template,
	// service and config.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LatestRevision string `json:"latestRevision,omitempty"`

	// publishedRevision is the revision CAFE has handed to the
	// CafeDeployment (the last spec.publishedRevision it acted on).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	PublishedRevision string `json:"publishedRevision,omitempty"`

	// lastSuccessfulRevision is the last revision whose release completed.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LastSuccessfulRevision string `json:"lastSuccessfulRevision,omitempty"`

	// revisionCount is the highest revision number handed out, so numbers
	// keep increasing when old revisions are collected.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RevisionCount int64 `json:"revisionCount,omitempty"`

	// serviceName is the Service carrying the app's traffic.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ServiceName string `json:"serviceName,omitempty"`

	// revisions lists the app's revisions, newest first.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Revisions []AppRevisionSummary `json:"revisions,omitempty"`
}

// AppRevisionSummary is one line of an app's revision list.
type AppRevisionSummary struct {
	// name of the AppRevision.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// number is N in <app>-r<N>.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Number int64 `json:"number,omitempty"`

	// created is when the revision was recorded.
	// +optional
	Created metav1.Time `json:"created,omitzero"`

	// hash is the revision's content hash.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Hash string `json:"hash,omitempty"`

	// outcome is the outcome of the revision's last release, empty when it
	// was never published.
	// +optional
	Outcome ReleaseOutcome `json:"outcome,omitempty"`
}

// CafeAppServiceList is a list of CafeAppServices.
//
// +kubebuilder:object:root=true
type CafeAppServiceList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the CafeAppServices.
	Items []CafeAppService `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &CafeAppService{}, &CafeAppServiceList{})
}
