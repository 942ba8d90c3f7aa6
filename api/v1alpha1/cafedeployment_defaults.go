package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Defaults of CafeDeployment fields. The CRD applies them through
// +kubebuilder:default markers; these copies serve objects that never went
// through an API server (unit tests, dry runs in the CLI). A test checks
// that both agree.
const (
	DefaultReplicas             int32 = 1
	DefaultRevisionHistoryLimit int32 = 10
	DefaultInitialDelaySeconds  int32 = 10
	DefaultMaxUnavailable       int32 = 1

	DefaultPodSetType  = PodSetTypeInPlaceSet
	DefaultUnitType    = UnitTypeZone
	DefaultUpgradeType = UpgradeTypeBeta
	DefaultGroupOrder  = GroupOrderInterleaved
)

// Default sets the fields the API server would default, and nothing else.
// As in the API server, the defaults of an optional struct apply only when
// the struct is present (non-zero), except for spec.strategy, which the CRD
// defaults to {}.
func (c *CafeDeployment) Default() {
	s := &c.Spec
	if s.Replicas == nil {
		s.Replicas = ptr.To(DefaultReplicas)
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr.To(DefaultRevisionHistoryLimit)
	}
	if s.PodSetType == "" {
		s.PodSetType = DefaultPodSetType
	}
	if s.Topology.UnitType == "" {
		s.Topology.UnitType = DefaultUnitType
	}
	if s.Topology.AutoReschedule != (AutoReschedule{}) && s.Topology.AutoReschedule.InitialDelaySeconds == nil {
		s.Topology.AutoReschedule.InitialDelaySeconds = ptr.To(DefaultInitialDelaySeconds)
	}
	if s.Strategy.UpgradeType == "" {
		s.Strategy.UpgradeType = DefaultUpgradeType
	}
	if s.Strategy.GroupOrder == "" {
		s.Strategy.GroupOrder = DefaultGroupOrder
	}
	if s.Strategy.MaxUnavailable == nil {
		s.Strategy.MaxUnavailable = ptr.To(intstr.FromInt32(DefaultMaxUnavailable))
	}
}
