package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClassicInstanceHostField is the field selector a host's agent watches
// its own instances by (the CRD declares it selectable).
const ClassicInstanceHostField = "spec.hostName"

// Condition types of a ClassicInstance, written by its host's agent.
const (
	// ClassicInstanceReadyCondition is True while a process of the spec's
	// artifact runs and answers its health check.
	ClassicInstanceReadyCondition = "Ready"
)

// Reasons of the Ready condition of a ClassicInstance.
const (
	ClassicInstanceReasonHealthy          = "Healthy"
	ClassicInstanceReasonFetching         = "Fetching"
	ClassicInstanceReasonFetchFailed      = "FetchFailed"
	ClassicInstanceReasonChecksumMismatch = "ChecksumMismatch"
	ClassicInstanceReasonUnpackFailed     = "UnpackFailed"
	ClassicInstanceReasonStarting         = "Starting"
	ClassicInstanceReasonStartFailed      = "StartFailed"
	ClassicInstanceReasonUnhealthy        = "Unhealthy"
	ClassicInstanceReasonExited           = "Exited"
	// ClassicInstanceReasonPortBusy: the instance waits for its port,
	// which the process of another instance of the host still holds (one
	// stopping after its deletion, say), rather than start a process that
	// cannot listen.
	ClassicInstanceReasonPortBusy = "PortBusy"
)

// Phases of a ClassicInstance (empty until its host's agent acts on it).
const (
	ClassicInstanceStarting = "Starting"
	ClassicInstanceRunning  = "Running"
	ClassicInstanceFailed   = "Failed"
)

// ClassicEnvVar is an environment variable of a classic instance's
// process.
type ClassicEnvVar struct {
	// name of the variable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`
	// value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value,omitempty"`
}

// ClassicArtifact is what a classic unit runs: a package (a gzip'd tar)
// fetched from an artifact store, checked against its SHA-256, unpacked and
// started by command. The instance serves on its host's address at port.
type ClassicArtifact struct {
	// url is where the host's agent downloads the package from (http or
	// https).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="must be an http or https URL"
	URL string `json:"url"`

	// sha256 is the package's SHA-256 in lowercase hex; a package whose
	// bytes hash otherwise is not run (reason ChecksumMismatch).
	// +required
	// +kubebuilder:validation:Pattern=`^[a-f0-9]{64}$`
	SHA256 string `json:"sha256"`

	// command is the program, relative to the unpacked package (or
	// absolute), and its arguments.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self[0] != ''",message="command[0], the program, must not be empty"
	Command []string `json:"command"`

	// port is the TCP port the instance listens on at its host's address
	// (the agent passes it as CAFE_LISTEN=<address>:<port>).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// portName names port, as a container port's name does: a Service
	// whose targetPort is this name (or the number port) sends its traffic
	// to the instance (CAFE lists it in the Service's EndpointSlices).
	// +optional
	// +kubebuilder:default=http
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	PortName string `json:"portName,omitempty"`

	// healthPath is the HTTP path that answers 2xx once the instance can
	// serve.
	// +optional
	// +kubebuilder:default="/healthz"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	HealthPath string `json:"healthPath,omitempty"`

	// env is the process's environment besides the variables the agent
	// sets (CAFE_LISTEN, CAFE_INSTANCE, CAFE_NAMESPACE).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []ClassicEnvVar `json:"env,omitempty"`
}

// ClassicInstanceSpec says which host runs the instance and what it runs.
type ClassicInstanceSpec struct {
	// hostName is the ClassicHost that runs the instance; it cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.hostName is immutable"
	HostName string `json:"hostName"`

	// artifact is the package the instance runs; changing it makes the
	// agent fetch and check the new package, then stop the old process and
	// start the new one.
	// +required
	Artifact ClassicArtifact `json:"artifact"`

	// trafficGate is CAFE's lossless gate, the counterpart of a pod's
	// cafe.io/traffic-ready condition: Open lets the instance be listed as
	// ready behind its Services once it is Ready; DrainForUpdate and
	// DrainForDelete take it out of every traffic system before CAFE
	// changes its package or deletes it (the reason says which). It is in
	// the spec so that only CAFE (not the host's agent) can open it.
	// +optional
	// +kubebuilder:default=Open
	TrafficGate ClassicTrafficGate `json:"trafficGate,omitempty"`
}

// ClassicTrafficGate is the state of a ClassicInstance's traffic gate.
// +kubebuilder:validation:Enum=Open;DrainForUpdate;DrainForDelete
type ClassicTrafficGate string

const (
	// ClassicTrafficGateOpen lets a Ready instance receive traffic.
	ClassicTrafficGateOpen ClassicTrafficGate = "Open"
	// ClassicTrafficGateDrainForUpdate closes the gate before the
	// instance's package changes.
	ClassicTrafficGateDrainForUpdate ClassicTrafficGate = "DrainForUpdate"
	// ClassicTrafficGateDrainForDelete closes the gate before the instance
	// is deleted.
	ClassicTrafficGateDrainForDelete ClassicTrafficGate = "DrainForDelete"
)

// GateOpen reports whether the instance's traffic gate is open (unset is
// open: the default).
func (i *ClassicInstance) GateOpen() bool {
	return i.Spec.TrafficGate == "" || i.Spec.TrafficGate == ClassicTrafficGateOpen
}

// IsReady reports whether the host's agent reports the instance Ready for
// its current spec.
func (i *ClassicInstance) IsReady() bool {
	c := meta.FindStatusCondition(i.Status.Conditions, ClassicInstanceReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && i.Status.ObservedGeneration == i.Generation
}

// ClassicProcess is the process an agent runs for an instance.
type ClassicProcess struct {
	// sha256 of the package the process was started from.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SHA256 string `json:"sha256,omitempty"`
	// pid of the process on the host.
	// +optional
	PID int64 `json:"pid,omitempty"`
	// startedAt is when the agent started it.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
}

// ClassicInstanceStatus is what the host's agent observes of the instance.
type ClassicInstanceStatus struct {
	// observedGeneration is the generation the agent last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the conditions: Starting (fetching, starting, or
	// waiting for the health check), Running (the process runs; Ready says
	// whether it answers), Failed (the spec's package cannot run: see the
	// Ready condition's reason). Empty until the host's agent acts on it.
	// +optional
	// +kubebuilder:validation:Enum=Starting;Running;Failed
	Phase string `json:"phase,omitempty"`

	// address is where the instance serves: the host's address and the
	// artifact's port.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Address string `json:"address,omitempty"`

	// process is the process running now, which may still be the previous
	// package's while the spec's is fetched, or when it failed its
	// checksum.
	// +optional
	Process *ClassicProcess `json:"process,omitempty"`

	// restarts counts the times the agent restarted an exited process of
	// the same package.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`

	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ClassicInstance is one process of an app on a classic host: the
// counterpart of a pod. CAFE (or a person) creates it naming the host; the
// host's agent, watching the instances of its host, fetches the package,
// runs and health-checks the process and reports in status, the only part
// it may write.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cinst
// +kubebuilder:selectablefield:JSONPath=`.spec.hostName`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.hostName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.address`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Gate",type=string,JSONPath=`.spec.trafficGate`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Restarts",type=integer,JSONPath=`.status.restarts`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClassicInstance struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec names the host and the package.
	// +required
	Spec ClassicInstanceSpec `json:"spec,omitzero"`

	// status is what the host's agent observes.
	// +optional
	Status ClassicInstanceStatus `json:"status,omitzero"`
}

// ClassicInstanceList is a list of ClassicInstances.
//
// +kubebuilder:object:root=true
type ClassicInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the instances.
	Items []ClassicInstance `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ClassicInstance{}, &ClassicInstanceList{})
}
