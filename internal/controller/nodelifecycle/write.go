package nodelifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// The writers: each makes one object say what the reconcile decided.

// wroteNode records the node's resourceVersion after a write: the next
// reconcile waits until the cache has it, or it would see the node
// without the taint just added and spend a second grant of the taint
// rate limit on it.
func (r *Reconciler) wroteNode(node *corev1.Node) {
	r.nodeWrites.Wrote(types.NamespacedName{Name: node.Name}, node.ResourceVersion)
}

// writeUnhealthySince keeps the node's cafe.io/unhealthy-since annotation
// in step with its verdict. It is written before the verdict's condition,
// so a node recorded as unhealthy always carries it.
func (r *Reconciler) writeUnhealthySince(ctx context.Context, st *nodeState, since time.Time) error {
	node := st.Node
	var want any
	if !since.IsZero() {
		want = since.UTC().Format(time.RFC3339)
	}
	have, ok := node.Annotations[cafev1alpha1.UnhealthySinceAnnotation]
	if (want == nil && !ok) || (want != nil && have == want) {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{cafev1alpha1.UnhealthySinceAnnotation: want}}})
	node = st.writableNode()
	if err := r.Client.Patch(ctx, node, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("annotating node %s with %s: %w", node.Name, cafev1alpha1.UnhealthySinceAnnotation, err)
	}
	r.wroteNode(node)
	return nil
}

// writeCondition patches cafe.io/NodeHealthy when it changes. Its
// lastTransitionTime is when the verdict (the reason) last changed.
func (r *Reconciler) writeCondition(ctx context.Context, st *nodeState, v cafev1alpha1.NodeVerdict, message string, since time.Time) error {
	node := st.Node
	status := corev1.ConditionFalse
	if v == cafev1alpha1.NodeVerdictHealthy {
		status = corev1.ConditionTrue
	}
	for _, c := range node.Status.Conditions {
		if string(c.Type) == cafev1alpha1.NodeHealthyCondition && c.Status == status && c.Reason == string(v) && c.Message == message {
			return nil
		}
	}
	cond := corev1.NodeCondition{
		Type: corev1.NodeConditionType(cafev1alpha1.NodeHealthyCondition), Status: status, Reason: string(v), Message: message,
		LastTransitionTime: metav1.NewTime(since), LastHeartbeatTime: metav1.NewTime(r.Now()),
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if err != nil {
		return err
	}
	node = st.writableNode()
	if err := r.Client.Status().Patch(ctx, node, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing condition %s on node %s: %w", cafev1alpha1.NodeHealthyCondition, node.Name, err)
	}
	r.wroteNode(node)
	return nil
}

// writeTaints puts CAFE's taints on the node or takes them off, with an
// optimistic lock (the upstream node lifecycle controller taints too).
func (r *Reconciler) writeTaints(ctx context.Context, node *corev1.Node, a *nodeActions, now time.Time) error {
	want := map[corev1.TaintEffect]bool{corev1.TaintEffectNoSchedule: a.NoSchedule, corev1.TaintEffectNoExecute: a.NoExecute}
	var taints []corev1.Taint
	have := map[corev1.TaintEffect]bool{}
	for _, t := range node.Spec.Taints {
		if t.Key == cafev1alpha1.UnhealthyTaintKey {
			if !want[t.Effect] {
				continue
			}
			have[t.Effect] = true
		}
		taints = append(taints, t)
	}
	var added []string
	for _, e := range []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute} {
		if want[e] && !have[e] {
			t := corev1.Taint{Key: cafev1alpha1.UnhealthyTaintKey, Effect: e}
			if e == corev1.TaintEffectNoExecute {
				t.TimeAdded = &metav1.Time{Time: now}
			}
			taints = append(taints, t)
			added = append(added, string(e))
		}
	}
	if len(taints) == len(node.Spec.Taints) && len(added) == 0 {
		return nil
	}
	removed := len(added) == 0
	updated := node.DeepCopy()
	updated.Spec.Taints = taints
	if err := r.Client.Patch(ctx, updated, client.MergeFromWithOptions(node, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // judged again at the next resync
		}
		return fmt.Errorf("tainting node %s: %w", node.Name, err)
	}
	r.wroteNode(updated)
	if removed {
		r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, "Untainted", "Untaint", "Removed %s taints", cafev1alpha1.UnhealthyTaintKey)
	} else {
		r.Recorder.Eventf(node, nil, corev1.EventTypeWarning, "Tainted", "Taint", "Added %s:%s", cafev1alpha1.UnhealthyTaintKey, strings.Join(added, ","))
	}
	return nil
}

// requestMigration asks a pod (an instance) to migrate off its Failed
// node (host) by annotating it cafe.io/migration-requested; its InPlaceSet
// (ClassicSet) creates its replacement, then drains and deletes it. It
// reports whether the request was written (one gone meanwhile needs none).
// kind is "Node" or "Host".
func (r *Reconciler) requestMigration(ctx context.Context, kind, from string, target client.Object, now time.Time) (bool, error) {
	value := fmt.Sprintf("nodelifecycle %s %s %s Failed", now.UTC().Format(time.RFC3339), strings.ToLower(kind), from)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{cafev1alpha1.MigrationRequestedAnnotation: value}}})
	if err := r.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("requesting migration of %s/%s: %w", target.GetNamespace(), target.GetName(), err)
	}
	return true, nil
}

// recordGrant writes the rate limit's grants to the policy's status, with
// an optimistic lock (the cache may not have our last grant yet: then this
// conflicts and nothing migrates until the next reconcile), and updates
// policy to what the API server stored.
func (r *Reconciler) recordGrant(ctx context.Context, policy *cafev1alpha1.NodeLifecyclePolicy, migrations, taints []cafev1alpha1.MigrationGrant) error {
	updated := policy.DeepCopy()
	updated.Status.RecentMigrations = migrations
	updated.Status.RecentTaints = taints
	if err := r.Client.Status().Patch(ctx, updated, client.MergeFromWithOptions(policy, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("recording %d migration and %d taint grant(s) in NodeLifecyclePolicy %s: %w", len(migrations), len(taints), policy.Name, err)
	}
	r.policyWrites.Wrote(client.ObjectKeyFromObject(updated), updated.ResourceVersion)
	updated.Spec.Default()
	*policy = *updated
	return nil
}

// updatePolicyStatus writes the policy's status computed by policyStatus,
// with an event when the zone guard trips or clears. The patch is
// optimistically locked: a policy read from a cache that has not seen the
// last grant yet must not write an older list of grants back.
func (r *Reconciler) updatePolicyStatus(ctx context.Context, policy *cafev1alpha1.NodeLifecyclePolicy, st *cafev1alpha1.NodeLifecyclePolicyStatus) error {
	if equalStatus(&policy.Status, st) {
		return nil
	}
	updated := policy.DeepCopy()
	updated.Status = *st
	err := r.Client.Status().Patch(ctx, updated, client.MergeFromWithOptions(policy, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		// Someone edited the spec since the read (only CAFE writes the
		// status, and the reconcile started from a cache that had seen
		// CAFE's last status write): the status diff still holds. Losing
		// it would lose the previous verdicts in status.unhealthyNodes.
		err = r.Client.Status().Patch(ctx, updated, client.MergeFrom(policy))
	}
	if err != nil {
		return client.IgnoreNotFound(err)
	}
	r.policyWrites.Wrote(client.ObjectKeyFromObject(updated), updated.ResourceVersion)
	wasGuarded := meta.IsStatusConditionTrue(policy.Status.Conditions, cafev1alpha1.NodeLifecycleZoneGuardCondition)
	guard := meta.FindStatusCondition(st.Conditions, cafev1alpha1.NodeLifecycleZoneGuardCondition)
	switch guarded := guard.Status == metav1.ConditionTrue; {
	case guarded && !wasGuarded:
		r.Recorder.Eventf(policy, nil, corev1.EventTypeWarning, "ZoneGuardTripped", "Guard", "%s", guard.Message)
	case !guarded && wasGuarded:
		r.Recorder.Eventf(policy, nil, corev1.EventTypeNormal, "ZoneGuardCleared", "Guard", "No zone is guarded any more")
	}
	return nil
}

func equalStatus(a, b *cafev1alpha1.NodeLifecyclePolicyStatus) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
