package nodelifecycle

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// What starts a pass. A pass lists and judges every node, so it runs when a
// signal can have changed, not on every heartbeat:
//   - a node update that changes what a signal or an action reads (its
//     conditions other than their heartbeat times, taints and the rest of
//     its spec, labels, annotations, addresses, kubelet endpoint);
//   - the prober's verdict on a kubelet endpoint turning (Prober.Changed);
//   - reports and the policy (every change);
//   - the time at which a verdict could change by time alone (thresholds,
//     recoveries, report expiries, Lease deadlines), and a resync: short
//     while any node has a bad signal or is not Healthy, long when all are
//     calm (IdleResync: a safety net, not the clock of the judgement).
//
// Leases are not watched (listLeases says why): a fresh Lease going stale
// is a deadline, and a stale one renewed again is seen by the next short
// resync, a stale Lease being a bad signal.

// nodeSignalsChanged passes node updates that change what a pass reads.
var nodeSignalsChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*corev1.Node)
		cur, okNew := e.ObjectNew.(*corev1.Node)
		return !okOld || !okNew || nodeSignalsDiffer(old, cur)
	},
}

func nodeSignalsDiffer(old, cur *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, cur.Annotations) ||
		!old.DeletionTimestamp.Equal(cur.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(old.Spec, cur.Spec) ||
		!equality.Semantic.DeepEqual(old.Status.Addresses, cur.Status.Addresses) ||
		old.Status.DaemonEndpoints != cur.Status.DaemonEndpoints ||
		!sameConditionsButHeartbeats(old.Status.Conditions, cur.Status.Conditions)
}

// sameConditionsButHeartbeats compares node conditions without their
// lastHeartbeatTime, which a kubelet refreshes without anything changing.
func sameConditionsButHeartbeats(a, b []corev1.NodeCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.LastHeartbeatTime, y.LastHeartbeatTime = metav1.Time{}, metav1.Time{}
		if !equality.Semantic.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// probeChanged is the prober's nudge: one pending event is enough, a pass
// reads every node's probe record.
type probeChanged chan event.GenericEvent

func (c probeChanged) notify() {
	select {
	case c <- event.GenericEvent{Object: &corev1.Node{}}:
	default:
	}
}
