package podset

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// replicasDrifted reports whether someone else changed the replicas of a
// pod set CAFE applied (`kubectl scale` on a unit's ReplicaSet, StatefulSet
// or InPlaceSet): the applied-hash annotation still matches then, yet CAFE
// must apply its own count again. The pods the native controller meanwhile
// tried to delete are refused by the pod webhook until drained.
func replicasDrifted(desired, existing client.Object) bool {
	if existing == nil {
		return false
	}
	want, known := specReplicas(desired)
	have, _ := specReplicas(existing)
	// Every kind defaults an unset count to 1.
	return known && ptr.Deref(want, 1) != ptr.Deref(have, 1)
}

func specReplicas(obj client.Object) (*int32, bool) {
	switch o := obj.(type) {
	case *appsv1.ReplicaSet:
		return o.Spec.Replicas, true
	case *appsv1.StatefulSet:
		return o.Spec.Replicas, true
	case *cafev1alpha1.InPlaceSet:
		return o.Spec.Replicas, true
	case *cafev1alpha1.ClassicSet:
		return o.Spec.Replicas, true
	}
	return nil, false
}
