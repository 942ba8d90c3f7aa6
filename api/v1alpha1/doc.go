// Package v1alpha1 holds the cafe.io/v1alpha1 API: [CafeDeployment], the
// workload that spreads an application over topology units and releases it
// group by group, and [InPlaceSet], the pod set that updates pods in place.
//
// Invariants of this package:
//   - It imports only k8s.io/api and k8s.io/apimachinery, so clients, the CLI
//     and other modules can import it cheaply; [SchemeBuilder] is a plain
//     apimachinery builder for that reason.
//   - The CRDs in config/crd/bases are generated from these types. Defaults
//     are declared with +kubebuilder:default markers and mirrored in the
//     <kind>_defaults.go files for objects that never went through an API
//     server.
//   - Field-local and cross-field rules are CEL (x-kubernetes-validations) on
//     the schema; rules CEL cannot express sanely are left to the validating
//     webhook and marked where they belong.
//   - The helpers in the <kind>_funcs.go files are pure, so controllers, the
//     webhook and the CLI agree on, for example, how replicas are split over
//     units ([SplitReplicas]).
//
// Label, finalizer and pod condition names shared by CAFE's components are in
// labels.go.
//
// Regenerate the deepcopy functions and the CRDs after changing a type with
// `make generate` (hack/generate.sh), which runs controller-gen v0.23.0:
//
//	bin/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
//	bin/controller-gen crd:generateEmbeddedObjectMeta=true paths=./api/... output:crd:artifacts:config=config/crd/bases
//
// generateEmbeddedObjectMeta is required: without it the schema of
// spec.template.metadata (and of volumeClaimTemplates[].metadata) has no
// properties, and the API server prunes the pod labels and claim names.
package v1alpha1
