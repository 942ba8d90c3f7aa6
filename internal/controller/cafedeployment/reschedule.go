package cafedeployment

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// rescheduleInput is what the autoReschedule decision reads.
type rescheduleInput struct {
	Units []string
	// Base is each unit's share of the replicas from the spec.
	Base map[string]int32
	// Moved is what the status says each unit has moved out so far.
	Moved map[string]int32
	// StuckPods counts, per unit, pods unschedulable for longer than the
	// initial delay.
	StuckPods map[string]int32
	// Schedulable says whether a unit has a Ready node that accepts pods.
	Schedulable map[string]bool
}

// reschedule decides how many replicas each unit moves out, and returns the
// resulting replicas per unit. A unit whose pods stay unschedulable moves
// them out; a unit that moved replicas out takes them all back as soon as it
// has a schedulable node again and none of its pods is stuck (if capacity
// is still short, they get stuck again and move out again after the delay,
// which bounds any flapping). Moved replicas go to the units that moved
// nothing, evenly, remainder to the first units; with no such unit nothing
// moves.
func reschedule(in rescheduleInput) (moved, replicas map[string]int32) {
	moved = map[string]int32{}
	for _, u := range in.Units {
		m := in.Moved[u]
		switch {
		case in.StuckPods[u] > 0:
			m = min(m+in.StuckPods[u], in.Base[u])
		case m > 0 && in.Schedulable[u]:
			m = 0
		}
		if m > 0 {
			moved[u] = m
		}
	}
	var receivers []string
	var total int32
	for _, u := range in.Units {
		if moved[u] == 0 {
			receivers = append(receivers, u)
		}
		total += moved[u]
	}
	replicas = map[string]int32{}
	if len(receivers) == 0 {
		for _, u := range in.Units {
			replicas[u] = in.Base[u]
		}
		return map[string]int32{}, replicas
	}
	for _, u := range in.Units {
		replicas[u] = in.Base[u] - moved[u]
	}
	share, rest := total/int32(len(receivers)), total%int32(len(receivers))
	for i, u := range receivers {
		replicas[u] += share
		if int32(i) < rest {
			replicas[u]++
		}
	}
	return moved, replicas
}

// stuckSince returns when a pod became unschedulable, or false if it is not.
func stuckSince(pod *corev1.Pod) (time.Time, bool) {
	if pod.Spec.NodeName != "" || !pod.DeletionTimestamp.IsZero() {
		return time.Time{}, false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// nodeSchedulable reports whether a node is Ready and accepts new pods.
func nodeSchedulable(node *corev1.Node) bool {
	if node.Spec.Unschedulable {
		return false
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// rescheduling is the spec to plan from (unitReplicas adjusted for moved
// replicas) and what each unit moved out.
type rescheduling struct {
	spec  cafev1alpha1.CafeDeploymentSpec
	moved map[string]int32
}

// reschedulingFor applies autoReschedule: it reads the pods stuck
// unschedulable and the units' nodes, decides, and returns the rescheduling
// (the spec to plan from) and when to look again (a pod still inside its
// initial delay).
func (r *Reconciler) reschedulingFor(ctx context.Context, cd *cafev1alpha1.CafeDeployment) (rescheduling, time.Duration, error) {
	out := rescheduling{spec: cd.Spec, moved: map[string]int32{}}
	ar := cd.Spec.Topology.AutoReschedule
	if !ar.Enable {
		return out, 0, nil
	}
	base, err := cafev1alpha1.SplitReplicas(ptr.Deref(cd.Spec.Replicas, 1), cd.Spec.Topology)
	if err != nil {
		return out, 0, nil // plan.New reports the spec error
	}
	in := rescheduleInput{Units: cd.Spec.Topology.Values, Base: base, Moved: map[string]int32{}, StuckPods: map[string]int32{}, Schedulable: map[string]bool{}}
	for _, u := range cd.Status.Units {
		in.Moved[u.Name] = ptr.Deref(u.RescheduledReplicas, 0)
	}
	requeue, err := r.stuckPods(ctx, cd, time.Duration(ptr.Deref(ar.InitialDelaySeconds, 10))*time.Second, in.StuckPods)
	if err != nil {
		return out, 0, err
	}
	if err := r.schedulableUnits(ctx, cd, in.Schedulable); err != nil {
		return out, 0, err
	}
	moved, replicas := reschedule(in)
	out.moved = moved
	if len(moved) > 0 {
		out.spec = *cd.Spec.DeepCopy()
		out.spec.Topology.UnitReplicas = map[string]intstr.IntOrString{}
		for u, n := range replicas {
			out.spec.Topology.UnitReplicas[u] = intstr.FromInt32(n)
		}
	}
	return out, requeue, nil
}

// setRescheduledReplicas reports in each unit's status the replicas it
// moved out.
func setRescheduledReplicas(cd *cafev1alpha1.CafeDeployment, moved map[string]int32) {
	for i := range cd.Status.Units {
		if m := moved[cd.Status.Units[i].Name]; m > 0 {
			cd.Status.Units[i].RescheduledReplicas = ptr.To(m)
		}
	}
}

// stuckPods counts, per unit, the CafeDeployment's pods unschedulable for
// longer than delay, and returns when the next one will be.
func (r *Reconciler) stuckPods(ctx context.Context, cd *cafev1alpha1.CafeDeployment, delay time.Duration, stuck map[string]int32) (time.Duration, error) {
	sel, err := metav1.LabelSelectorAsSelector(cd.Spec.Selector)
	if err != nil {
		return 0, nil
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(cd.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return 0, fmt.Errorf("listing pods: %w", err)
	}
	var next time.Duration
	now := r.Now()
	for i := range pods.Items {
		since, ok := stuckSince(&pods.Items[i])
		if !ok {
			continue
		}
		if wait := since.Add(delay).Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		stuck[pods.Items[i].Labels[cafev1alpha1.UnitLabel]]++
	}
	return next, nil
}

// schedulableUnits marks the units that have a Ready node accepting pods.
func (r *Reconciler) schedulableUnits(ctx context.Context, cd *cafev1alpha1.CafeDeployment, out map[string]bool) error {
	nodes := &corev1.NodeList{}
	if err := r.Client.List(ctx, nodes, client.HasLabels{cd.Spec.Topology.UnitLabelKey()}); err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		if nodeSchedulable(&nodes.Items[i]) {
			out[nodes.Items[i].Labels[cd.Spec.Topology.UnitLabelKey()]] = true
		}
	}
	return nil
}

// reportRescheduling records an event when replicas move out or back.
func (r *Reconciler) reportRescheduling(before, after *cafev1alpha1.CafeDeployment) {
	was := map[string]int32{}
	for _, u := range before.Status.Units {
		was[u.Name] = ptr.Deref(u.RescheduledReplicas, 0)
	}
	for _, u := range after.Status.Units {
		now := ptr.Deref(u.RescheduledReplicas, 0)
		switch {
		case now > was[u.Name]:
			r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, "ReplicasRescheduled", "Reschedule", "%d replicas of unit %s could not be scheduled there and moved to other units", now-was[u.Name], u.Name)
		case now < was[u.Name]:
			r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, "ReplicasReturned", "Reschedule", "%d replicas moved back to unit %s, which has schedulable nodes again", was[u.Name]-now, u.Name)
		}
	}
}

// reschedulingDeployments maps a node event to the CafeDeployments that
// have replicas moved out of a unit (only they can act on it).
func (r *Reconciler) reschedulingDeployments(ctx context.Context, _ client.Object) []ctrl.Request {
	list := &cafev1alpha1.CafeDeploymentList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, cd := range list.Items {
		for _, u := range cd.Status.Units {
			if ptr.Deref(u.RescheduledReplicas, 0) > 0 {
				reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&cd)})
				break
			}
		}
	}
	return reqs
}

// schedulabilityChanged passes node events that can change whether a unit
// accepts pods: creation, deletion, cordoning, taints, readiness, labels.
var schedulabilityChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*corev1.Node), e.ObjectNew.(*corev1.Node)
		if o == nil || n == nil {
			return true
		}
		return nodeSchedulable(o) != nodeSchedulable(n) || !maps.Equal(o.Labels, n.Labels)
	},
}
