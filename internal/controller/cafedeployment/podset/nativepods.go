package podset

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/podutil"
	"github.com/cafe-io/cafe/internal/writebatch"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// IsNativePod: a pod of a CafeDeployment's ReplicaSet or StatefulSet.
// (InPlaceSet pods are their set's business; these the release drives.)
func IsNativePod(obj client.Object) bool {
	labels := obj.GetLabels()
	_, inPlace := labels[cafev1alpha1.InPlaceSetLabel]
	return labels[cafev1alpha1.DeploymentLabel] != "" && !inPlace
}

// DeploymentOfNativePod maps a native pod to its CafeDeployment.
func DeploymentOfNativePod(_ context.Context, obj client.Object) []ctrl.Request {
	if !IsNativePod(obj) {
		return nil
	}
	return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetLabels()[cafev1alpha1.DeploymentLabel]}}}
}

// DrainingDeployment names the CafeDeployment of a native pod that is
// draining (only such pods wait on EndpointSlices).
func DrainingDeployment(obj client.Object) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok || !IsNativePod(pod) || lossless.DrainReason(pod) == "" {
		return nil
	}
	return []string{pod.Labels[cafev1alpha1.DeploymentLabel]}
}

// nativeUnits is what both native drivers know besides their pod sets: the
// CafeDeployment, its update revision and its pods, by unit.
type nativeUnits struct {
	env  Env
	cd   *cafev1alpha1.CafeDeployment
	rev  string
	pods map[string][]nativePod
}

// loadNativeUnits reads a native driver's pod sets (calling each with every
// one the CafeDeployment controls, see forEachControlled), then their pods.
func loadNativeUnits[T client.Object](ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, updateRevision string, list client.ObjectList, what string, each func(unit string, set T)) (nativeUnits, error) {
	if err := forEachControlled(ctx, env.Client, cd, list, what, each); err != nil {
		return nativeUnits{}, err
	}
	pods, err := env.nativePods(ctx, cd, updateRevision)
	if err != nil {
		return nativeUnits{}, err
	}
	return nativeUnits{env: env, cd: cd, rev: updateRevision, pods: pods}, nil
}

// nativePod is what the planners of the native pod sets (ReplicaSet,
// StatefulSet) know about one pod; gathered from the cache, decided on
// without any API call.
type nativePod struct {
	Pod *corev1.Pod
	// Owner is the name of the ReplicaSet or StatefulSet controlling it.
	Owner string
	// Ordinal is a StatefulSet pod's ordinal (-1 for a ReplicaSet's pod).
	Ordinal int
	// Updated: the pod runs the update revision (its revision label says so).
	Updated     bool
	Terminating bool
	// Available: Ready (containers and gate) with the gate open, which the
	// gate keeper does only after minReadySeconds.
	Available bool
	// DrainReason is set while the gate is closed for an operation; Drained
	// once nothing routes traffic to the pod any more.
	DrainReason string
	Drained     bool
	// HeldDrain and HeldDrainIn: see lossless.HeldDrain.
	HeldDrain   string
	HeldDrainIn time.Duration
	// Marked: drained and given the lowest deletion cost, so its ReplicaSet
	// deletes it first when scaled down; the pod is committed to go.
	Marked bool
	// DeleteRequested: someone asked for this pod to go (`kubectl delete
	// pod`, turned into a drain request by the admission webhook): it is
	// drained, then deleted, and its ReplicaSet or StatefulSet replaces it.
	DeleteRequested bool
}

// planRequestedDeletions drains the pods whose deletion was requested and
// deletes each once drained; its ReplicaSet or StatefulSet replaces it.
// Draining an available pod spends the unit's budget (a person's request
// does not take the unit below its share of the water level: it waits);
// one that serves nobody goes at once. Paused starts no drain.
func planRequestedDeletions(pods []nativePod, budget *int32, paused bool) (closeGates []lossless.GateChange, deletes []*corev1.Pod) {
	for _, p := range pods {
		switch {
		case !p.DeleteRequested || p.Terminating:
		case p.DrainReason == lossless.ReasonDrainForDelete:
			if p.Drained {
				deletes = append(deletes, p.Pod)
			}
		case paused:
		case !p.Available:
			closeGates = append(closeGates, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForDelete})
		case *budget > 0:
			*budget--
			closeGates = append(closeGates, lossless.GateChange{Pod: p.Pod, Reason: lossless.ReasonDrainForDelete})
		}
	}
	return closeGates, deletes
}

// deleteDrained deletes drained pods, each as it was judged
// (lossless.DeleteDrained); a conflict is judged again next reconcile.
func (env Env) deleteDrained(ctx context.Context, pods []*corev1.Pod) error {
	var w writebatch.Batch
	for _, pod := range pods {
		w.Add(func() error {
			err := lossless.DeleteDrained(ctx, env.Client, pod)
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("deleting drained pod %s: %w", client.ObjectKeyFromObject(pod), err)
			}
			return nil
		})
	}
	return w.Run(writebatch.Concurrency)
}

// deletionCostAnnotation ranks a ReplicaSet's pods for deletion on scale
// down (lower goes first).
const (
	deletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"
	drainedDeletionCost    = "-2147483648"
)

// nativePods reads the CafeDeployment's pods of native pod sets, by unit,
// with what the lossless protocol needs to know about each.
func (env Env) nativePods(ctx context.Context, cd *cafev1alpha1.CafeDeployment, updateRevision string) (map[string][]nativePod, error) {
	list := &corev1.PodList{}
	if err := env.Client.List(ctx, list, client.InNamespace(cd.Namespace), client.MatchingLabels{cafev1alpha1.DeploymentLabel: cd.Name}); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	out := map[string][]nativePod{}
	for i := range list.Items {
		pod := &list.Items[i]
		owner := metav1.GetControllerOf(pod)
		if owner == nil || (owner.Kind != "ReplicaSet" && owner.Kind != "StatefulSet") {
			continue
		}
		if env.PodWrites != nil && env.PodWrites.Behind(client.ObjectKeyFromObject(pod), pod.ResourceVersion) {
			return nil, fmt.Errorf("pod %s: %w", client.ObjectKeyFromObject(pod), ErrPodCacheBehind)
		}
		np := nativePod{
			Pod:             pod,
			Owner:           owner.Name,
			Ordinal:         -1,
			Updated:         pod.Labels[cafev1alpha1.RevisionHashLabel] == updateRevision,
			Terminating:     !pod.DeletionTimestamp.IsZero(),
			Available:       podutil.Ready(pod) && lossless.GateOpen(pod),
			DrainReason:     lossless.DrainReason(pod),
			Marked:          pod.Annotations[deletionCostAnnotation] == drainedDeletionCost,
			DeleteRequested: pod.Annotations[cafev1alpha1.DrainRequestedByAnnotation] != "",
		}
		if owner.Kind == "StatefulSet" {
			np.Ordinal = ordinalOf(owner.Name, pod.Name)
		}
		if np.DrainReason != "" {
			slices, err := env.Slices.ForPod(ctx, pod)
			if err != nil {
				return nil, err
			}
			np.Drained = lossless.Drained(pod, slices)
			if !np.Drained && !env.Now.IsZero() {
				np.HeldDrain, np.HeldDrainIn = lossless.HeldDrain(pod, lossless.TrafficHolders(pod, slices), env.Now)
			}
		}
		unit := pod.Labels[cafev1alpha1.UnitLabel]
		out[unit] = append(out[unit], np)
	}
	for _, pods := range out {
		sort.Slice(pods, func(i, j int) bool { return pods[i].Pod.Name < pods[j].Pod.Name })
	}
	return out, nil
}

// ordinalOf parses a StatefulSet pod's ordinal from its name, -1 if none.
func ordinalOf(set, pod string) int {
	var n int
	if _, err := fmt.Sscanf(pod[min(len(set)+1, len(pod)):], "%d", &n); err != nil || pod != fmt.Sprintf("%s-%d", set, n) {
		return -1
	}
	return n
}

// nativeReport counts a unit's pods for the release.
func nativeReport(pods []nativePod) UnitReport {
	var v UnitReport
	for _, p := range pods {
		if p.Terminating {
			continue
		}
		v.Replicas++
		if v.HeldDrain == "" {
			v.HeldDrain = p.HeldDrain
		}
		if p.HeldDrainIn > 0 && (v.HeldDrainIn == 0 || p.HeldDrainIn < v.HeldDrainIn) {
			v.HeldDrainIn = p.HeldDrainIn
		}
		if p.DeleteRequested {
			v.DeleteRequested++
		}
		if podutil.Ready(p.Pod) {
			v.Ready++
		}
		if p.Available {
			v.Available++
		}
		if p.Updated {
			v.Updated++
			if p.Available {
				v.UpdatedAvailable++
			}
		}
	}
	return v
}

// nativeTemplate is the pod template of a unit's native pod set: the
// CafeDeployment's template with the unit and revision labels, the
// traffic-ready readiness gate, pinned to the unit and spread over its
// nodes — what an InPlaceSet does to its pods, done in the template.
func nativeTemplate(cd *cafev1alpha1.CafeDeployment, unit, revision string) corev1.PodTemplateSpec {
	t := cd.Spec.Template.DeepCopy()
	t.Labels = withLabel(t.Labels, cafev1alpha1.DeploymentLabel, cd.Name)
	t.Labels[cafev1alpha1.UnitLabel] = unit
	t.Labels[cafev1alpha1.RevisionHashLabel] = revision
	lossless.EnsureGate(&t.Spec)
	podutil.PinToUnit(&t.Spec, cafev1alpha1.PodSetUnit{Key: cd.Spec.Topology.UnitLabelKey(), Value: unit})
	podutil.SpreadOverNodes(&t.Spec, map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.UnitLabel: unit})
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: t.Labels, Annotations: t.Annotations}, Spec: t.Spec}
}

// wrote records a gate write to pod (rv: its resourceVersion after it).
func (env Env) wrote(pod *corev1.Pod, rv string) {
	if env.PodWrites != nil && rv != "" {
		env.PodWrites.Wrote(client.ObjectKeyFromObject(pod), rv)
	}
}

// setGates closes and reopens gates as planned, the writes concurrently.
func (env Env) setGates(ctx context.Context, closeGates []lossless.GateChange, reopen []*corev1.Pod, revision string) error {
	var w writebatch.Batch
	for _, c := range closeGates {
		msg := "draining to replace it with revision " + revision
		if c.Reason == lossless.ReasonDrainForDelete {
			msg = "draining to delete it"
		}
		w.Add(func() error { return env.setGate(ctx, c.Pod, corev1.ConditionFalse, c.Reason, msg) })
	}
	for _, pod := range reopen {
		w.Add(func() error {
			return env.setGate(ctx, pod, corev1.ConditionTrue, lossless.ReasonServing, "the release no longer needs this pod to go")
		})
	}
	return w.Run(writebatch.Concurrency)
}

// setGate writes one pod's gate and records the write (env.wrote).
func (env Env) setGate(ctx context.Context, pod *corev1.Pod, status corev1.ConditionStatus, reason, msg string) error {
	rv, err := lossless.SetGateVersion(ctx, env.Client, pod, status, reason, msg)
	env.wrote(pod, rv)
	return ignoreChanged(err)
}

// ignoreChanged drops the errors of a gate write to a pod that was replaced
// (NotFound) or changed (Conflict) since the cache read it: the pod's own
// event brings the unit back to be decided on what it is now.
func ignoreChanged(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
