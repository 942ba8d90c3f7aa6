package lossless

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// EvictionBudget is the PodDisruptionBudget CAFE keeps for each pod set:
// no Ready pod of it may be evicted, a pod that is not Ready (drained, or
// serving nobody) may. The eviction webhook turns an eviction of a serving
// pod into a drain request; the budget is what still refuses it, enforced
// by the API server alone, while CAFE (and so the webhook, which fails
// open: it sees every eviction in the cluster) is down. A drained pod is
// never Ready (its gate is closed), so the budget never holds up an
// eviction the webhook allowed.
func EvictionBudget(namespace, name string, selector *metav1.LabelSelector) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:                   selector,
			MaxUnavailable:             ptr.To(intstr.FromInt32(0)),
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}
