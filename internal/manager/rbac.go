package manager

// RBAC the manager itself needs, independent of any one controller. Each
// controller package declares its own rules next to its Reconciler;
// `make generate` collects them into config/rbac/role.yaml.

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments;inplacesets,verbs=get;list;watch
