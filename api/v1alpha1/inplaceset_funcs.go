package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GetConditions returns the conditions of the InPlaceSet.
func (s *InPlaceSet) GetConditions() []metav1.Condition {
	return s.Status.Conditions
}

// SetConditions replaces the conditions of the InPlaceSet.
func (s *InPlaceSet) SetConditions(conditions []metav1.Condition) {
	s.Status.Conditions = conditions
}
