package pod

import (
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cafe-io/cafe/internal/lossless"
)

// EvictionPath is where the eviction guard is served.
const EvictionPath = "/validate-pod-eviction"

// EvictionGuard turns the eviction of a managed pod that still takes
// traffic into a drain request: the API server deletes an evicted pod
// without delete admission, so this is the only place to stop it. It
// answers 429, as a PodDisruptionBudget does, so `kubectl drain` and the
// cluster autoscaler retry until CAFE has drained the pod (an InPlaceSet's
// is usually deleted and replaced by CAFE first: the retry finds it gone).
//
// The webhook cannot be narrowed by labels (its object is the Eviction,
// not the pod), so it sees every eviction and reads the pod.
type EvictionGuard struct {
	// Reader reads the pod uncached: an eviction must not be judged on a
	// stale copy.
	Reader client.Reader
	// Client writes the request.
	Client client.Client
	// Slices reads the EndpointSlices that list the pod.
	Slices *lossless.Slices
}

// Handle implements admission.Handler.
func (h *EvictionGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.SubResource != "eviction" {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	err := h.Reader.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: req.Name}, pod)
	switch {
	case apierrors.IsNotFound(err):
		return admission.Allowed("no such pod")
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading pod %s/%s: %w", req.Namespace, req.Name, err))
	case !managedBy(pod):
		return admission.Allowed("not managed by CAFE")
	}
	if reason := mayGo(ctx, h.Slices, pod); reason != "" {
		return admission.Allowed(reason)
	}
	if err := requestDrain(ctx, h.Client, pod, req); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return tooManyRequests(fmt.Sprintf("pod %s is managed by CAFE and still takes traffic: a drain was requested; retry the eviction, it goes ahead once every traffic system has let go of the pod (CAFE usually deletes and replaces it first)", pod.Name))
}

// tooManyRequests refuses with 429, the answer evicters (kubectl drain,
// the cluster autoscaler) retry, as they do a PodDisruptionBudget's.
func tooManyRequests(msg string) admission.Response {
	resp := admission.Denied(msg)
	resp.Result.Code = http.StatusTooManyRequests
	resp.Result.Reason = metav1.StatusReasonTooManyRequests
	return resp
}
