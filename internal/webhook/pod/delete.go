// Package pod holds the admission webhook that keeps `kubectl delete pod`
// on a CAFE-managed pod lossless: instead of letting the pod go while it
// still takes traffic, the deletion is refused and turned into a drain
// request, which CAFE carries out: an InPlaceSet drains, deletes and
// replaces its pod; a CafeDeployment in ReplicaSet or StatefulSet mode
// drains the pod and deletes it, and its ReplicaSet or StatefulSet replaces
// it. The webhook only sees pods CAFE manages (objectSelectors on the
// cafe.io/inplaceset and cafe.io/cafedeployment labels), so it is never a
// cluster-wide single point of failure.
package pod

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/lossless"
)

// DeletePath is where the deletion guard is served.
const DeletePath = "/validate-pod-delete"

// Users whose deletions are part of Kubernetes' own bookkeeping: the
// garbage collector removing pods of a deleted owner, the namespace
// controller emptying a namespace being deleted, and the ReplicaSet and
// StatefulSet controllers carrying out the replica counts CAFE sets (CAFE
// lowers them only once the pods to go are drained).
var systemDeleters = map[string]bool{
	"system:serviceaccount:kube-system:generic-garbage-collector": true,
	"system:serviceaccount:kube-system:namespace-controller":      true,
	"system:serviceaccount:kube-system:replicaset-controller":     true,
	"system:serviceaccount:kube-system:statefulset-controller":    true,
}

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

// DeleteGuard refuses deleting a managed pod that still takes traffic and
// records a drain request on it instead.
type DeleteGuard struct {
	// Client reads EndpointSlices (from the cache) and writes the request.
	Client client.Client
}

// Handle implements admission.Handler.
func (h *DeleteGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Delete {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := admit.Decode(req.OldObject, pod, "pod"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if reason := h.mayDelete(ctx, pod, req.UserInfo.Username); reason != "" {
		return admission.Allowed(reason)
	}
	if req.DryRun == nil || !*req.DryRun {
		if err := requestDrain(ctx, h.Client, pod, req.UserInfo.Username); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	return admission.Denied(fmt.Sprintf("pod %s is managed by CAFE and still takes traffic: a drain was requested, and CAFE deletes and replaces the pod once every traffic system has let go of it. "+
		"To delete it at once regardless, a cluster admin sets the annotation %s=true on the pod first", pod.Name, cafev1alpha1.ForceDeleteAnnotation))
}

// mayDelete returns why the deletion may go ahead now, or "" if it must
// wait for a drain.
func (h *DeleteGuard) mayDelete(ctx context.Context, pod *corev1.Pod, user string) string {
	switch {
	case !managedBy(pod):
		return "not managed by CAFE"
	case pod.Annotations[cafev1alpha1.ForceDeleteAnnotation] == "true":
		return "forced by annotation"
	case !pod.DeletionTimestamp.IsZero():
		return "deletion already under way"
	case systemDeleters[user]:
		return "deleted by " + user
	case lossless.DrainReason(pod) != "":
		slices, err := lossless.SlicesForPod(ctx, h.Client, pod)
		if err == nil && lossless.Drained(pod, slices) {
			return "drained"
		}
	}
	return ""
}

// requestDrain records who asked for the pod to go; CAFE drains and
// deletes it, and the pod's set replaces it.
func requestDrain(ctx context.Context, c client.Client, pod *corev1.Pod, user string) error {
	if pod.Annotations[cafev1alpha1.DrainRequestedByAnnotation] != "" {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{cafev1alpha1.DrainRequestedByAnnotation: user}}})
	if err != nil {
		return err
	}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	if err := c.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("requesting a drain of pod %s: %w", pod.Name, err)
	}
	return nil
}
