package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Default sets the fields the API server would default, and nothing else;
// see [CafeDeployment.Default] for why it exists. InPlaceSet shares the
// defaults of CafeDeployment.
func (s *InPlaceSet) Default() {
	if s.Spec.Replicas == nil {
		s.Spec.Replicas = ptr.To(DefaultReplicas)
	}
	if s.Spec.UpdateStrategy.MaxUnavailable == nil {
		s.Spec.UpdateStrategy.MaxUnavailable = ptr.To(intstr.FromInt32(DefaultMaxUnavailable))
	}
}
