package pod

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// managedBy says whether CAFE manages the pod: an InPlaceSet's pod, or one
// of a CafeDeployment's native ReplicaSet or StatefulSet.
func managedBy(pod *corev1.Pod) bool {
	owner := metav1.GetControllerOf(pod)
	switch {
	case owner == nil:
		return false
	case owner.Kind == "InPlaceSet":
		return true
	default:
		return (owner.Kind == "ReplicaSet" || owner.Kind == "StatefulSet") && pod.Labels[cafev1alpha1.DeploymentLabel] != ""
	}
}

// mayGo returns why a managed pod may leave now without a drain (it serves
// nobody), or "": its deletion has begun, its containers have terminated,
// or it is drained.
func mayGo(ctx context.Context, slices *lossless.Slices, pod *corev1.Pod) string {
	switch {
	case !pod.DeletionTimestamp.IsZero():
		return "deletion already under way"
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return "its containers have terminated"
	case lossless.DrainReason(pod) != "":
		listing, err := slices.ForPod(ctx, pod)
		if err == nil && lossless.Drained(pod, listing) {
			return "drained"
		}
	}
	return ""
}

// requestDrain records on the pod who asked for it to go (unless the
// request is a dry run); CAFE drains and deletes it, and the pod's set
// replaces it. The first request is kept.
func requestDrain(ctx context.Context, c client.Client, pod *corev1.Pod, req admission.Request) error {
	if pod.Annotations[cafev1alpha1.DrainRequestedByAnnotation] != "" || (req.DryRun != nil && *req.DryRun) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{cafev1alpha1.DrainRequestedByAnnotation: req.UserInfo.Username}}})
	if err != nil {
		return err
	}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	if err := c.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("requesting a drain of pod %s: %w", pod.Name, err)
	}
	return nil
}
