package manager

// RBAC the manager itself needs, independent of any one controller. Each
// controller package declares its own rules next to its Reconciler;
// `make generate` collects them into config/rbac/role.yaml.

// Leader election: the Lease lives in CAFE's own namespace, so the right
// to write Leases is a Role there, never cluster-wide (a cluster-wide
// Lease writer could forge node heartbeats or take over kube-system's
// leaders).
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=cafe-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// The metrics endpoint authenticates its callers (TokenReview) and asks
// the API server whether they may read /metrics (SubjectAccessReview).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments;inplacesets,verbs=get;list;watch
