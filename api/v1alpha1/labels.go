package v1alpha1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Names that CAFE puts on pods and nodes. They are shared by the controllers,
// the traffic providers and the CLI, so they live in the API package.
const (
	// TrafficReadyCondition is the readiness gate on every pod CAFE manages.
	// CAFE sets it False before it touches a pod (so the EndpointSlice
	// controller drops the pod) and True again once the pod is ready and
	// minReadySeconds have passed.
	TrafficReadyCondition corev1.PodConditionType = "cafe.io/traffic-ready"

	// TrafficFinalizerPrefix prefixes the finalizer that each traffic provider
	// (load balancer, service registry, mesh) holds on a pod while the pod is
	// registered with it. CAFE operates on a pod only when no finalizer with
	// this prefix is left, so a new provider needs no change in CAFE.
	TrafficFinalizerPrefix = "traffic.cafe.io/"

	// RevisionHashLabel holds the hash of the revision a pod was created from
	// or last updated in place to. It is CAFE's own key, not the apps/v1
	// controller-revision-hash, because in StatefulSet mode the StatefulSet
	// controller already owns that one.
	RevisionHashLabel = "cafe.io/revision-hash"

	// UnitLabel holds the topology unit (a value of spec.topology.values) a
	// pod belongs to.
	UnitLabel = "cafe.io/unit"

	// CellNodeLabel is the node label that places a node in a cell.
	CellNodeLabel = "cafe.io/cell"

	// ZoneNodeLabel is the well-known node label that places a node in a zone.
	ZoneNodeLabel = corev1.LabelTopologyZone
)

// TrafficFinalizer returns the finalizer that the traffic provider named
// provider holds on the pods it has registered.
func TrafficFinalizer(provider string) string {
	return TrafficFinalizerPrefix + provider
}

// IsTrafficFinalizer reports whether finalizer is held by a traffic provider.
func IsTrafficFinalizer(finalizer string) bool {
	return strings.HasPrefix(finalizer, TrafficFinalizerPrefix) && len(finalizer) > len(TrafficFinalizerPrefix)
}

// Annotations through which people act on a CafeDeployment's release, and
// the ones CAFE's admission webhook stamps in answer with the user the API
// server authenticated. A client cannot write the stamped ones itself.
const (
	// ConfirmGroupAnnotation is set (by `cafe deploy confirm` or kubectl) to
	// the index of the group just finished, to let the release go on.
	ConfirmGroupAnnotation = "cafe.io/confirm-group"
	// ConfirmedByAnnotation and ConfirmedAtAnnotation record who confirmed.
	ConfirmedByAnnotation = "cafe.io/confirmed-by"
	ConfirmedAtAnnotation = "cafe.io/confirmed-at"

	// OverrideAnalysisGroupAnnotation is set (by `cafe deploy confirm
	// --override-analysis`) to the index of the group whose traffic step's
	// analysis a person overrides: the step counts as passed, whatever the
	// analysis said. OverrideAnalysisReasonAnnotation must say why.
	OverrideAnalysisGroupAnnotation  = "cafe.io/override-analysis-group"
	OverrideAnalysisReasonAnnotation = "cafe.io/override-analysis-reason"
	// AnalysisOverriddenByAnnotation and AnalysisOverriddenAtAnnotation
	// record who overrode, stamped by CAFE's admission webhook.
	AnalysisOverriddenByAnnotation = "cafe.io/analysis-overridden-by"
	AnalysisOverriddenAtAnnotation = "cafe.io/analysis-overridden-at"
	// PausedByAnnotation and ResumedByAnnotation record who last set or
	// cleared spec.strategy.pause.
	PausedByAnnotation  = "cafe.io/paused-by"
	ResumedByAnnotation = "cafe.io/resumed-by"
	// ReleasedByAnnotation records who last changed the pod template (a new
	// release or a rollback).
	ReleasedByAnnotation = "cafe.io/released-by"
	// ActedAtAnnotation is when the last pause, resume or release happened.
	ActedAtAnnotation = "cafe.io/acted-at"
	// FastReleaseByAnnotation and FastReleaseAtAnnotation record who last
	// set FastReleaseAnnotation (on a CafeDeployment or a CafeAppService),
	// and when: a fast release skips confirmations.
	FastReleaseByAnnotation = "cafe.io/fast-release-by"
	FastReleaseAtAnnotation = "cafe.io/fast-release-at"
	// StrategyChangedByAnnotation and StrategyChangedAtAnnotation record
	// who last changed the release strategy other than pause (minAvailable,
	// maxUnavailable, needWaitingForConfirm, batches, groups...), and when:
	// it changes the water level and the confirmations of a release.
	StrategyChangedByAnnotation = "cafe.io/strategy-changed-by"
	StrategyChangedAtAnnotation = "cafe.io/strategy-changed-at"
)

// FastReleaseAnnotation on a CafeDeployment, set to a revision hash (by
// `cafe deploy rollback --fast`) or to the app revision its template
// renders (by the CafeAppService controller), releases that revision in a
// single group, without waiting for confirmation, still within the water
// level (see CafeDeployment.FastReleaseRequested).
const FastReleaseAnnotation = "cafe.io/fast-release"

// DeploymentLabel marks the objects a CafeDeployment owns (its pod sets and
// its revision history) with the CafeDeployment's name.
const DeploymentLabel = "cafe.io/cafedeployment"

// Deleting a CAFE-managed pod goes through the lossless protocol.
const (
	// DrainRequestedByAnnotation is set by CAFE's admission webhook, with the
	// authenticated user, when someone deletes a managed pod that still takes
	// traffic: the pod's InPlaceSet then drains, deletes and replaces it.
	DrainRequestedByAnnotation = "cafe.io/drain-requested-by"
	// ForceDeleteAnnotation set to "true" by a cluster admin lets a managed
	// pod be deleted at once, without the drain.
	ForceDeleteAnnotation = "cafe.io/force-delete"
)

// InPlaceSetLabel marks pods (and revisions) with the name of the InPlaceSet
// that owns them; the pod-deletion webhook selects CAFE's pods by it.
const InPlaceSetLabel = "cafe.io/inplaceset"

// InPlaceSetDrainFinalizer holds a deleted InPlaceSet until CAFE has
// drained and deleted its pods, so deleting a set (or the CafeDeployment
// above it) never drops a pod that still serves.
const InPlaceSetDrainFinalizer = "cafe.io/drain-pods"

// ClassicSetDrainFinalizer holds a deleted ClassicSet until CAFE has
// drained and deleted its instances, as InPlaceSetDrainFinalizer does for
// an InPlaceSet's pods.
const ClassicSetDrainFinalizer = "cafe.io/drain-instances"

// EndpointSliceManagedBy is the endpointslice.kubernetes.io/managed-by
// value of the EndpointSlices CAFE writes for classic instances: the API
// server's own EndpointSlice controller leaves slices managed by another
// alone, and CAFE's drain of an instance reads these.
const EndpointSliceManagedBy = "cafe.io"

// EndpointSliceManagedByInPlaceSet is the managed-by value of the
// EndpointSlices an InPlaceSet writes for its pods (spec.endpoints): a
// value of their own, so the classic instances' publisher, which owns
// every cafe.io slice of a Service, leaves them alone.
const EndpointSliceManagedByInPlaceSet = "inplaceset.cafe.io"

// RegistryPublishLabel set to "true" on a Service publishes it in CAFE's
// east-west service registry: CAFE registers its ready pods and classic
// instances there (docs/classic-hosts.md, "The shared registry"), and its
// registry traffic provider holds traffic.cafe.io/registry on them until
// every consumer has applied their deregistration.
const RegistryPublishLabel = "registry.cafe.io/publish"
