// Package pod holds the admission webhooks that keep every way of removing
// a CAFE-managed pod lossless:
//
//   - Guard (pod DELETE and UPDATE): `kubectl delete pod`, and deletes by
//     the garbage collector or the ReplicaSet and StatefulSet controllers,
//     of a pod that still takes traffic are refused and turned into a drain
//     request, which CAFE carries out: an InPlaceSet drains, deletes and
//     replaces its pod; a CafeDeployment in ReplicaSet or StatefulSet mode
//     drains the pod and deletes it, and its ReplicaSet or StatefulSet
//     replaces it. An update may not change the labels that make the pod
//     CAFE's, nor release it from its controller, while it serves.
//   - EvictionGuard (pods/eviction CREATE): an eviction (`kubectl drain`,
//     the cluster autoscaler) of a serving pod records the same drain
//     request and is answered 429 Too Many Requests, as a
//     PodDisruptionBudget answers, so the evicter retries; once the pod is
//     drained the eviction goes ahead.
//
// Force-deleting a serving pod takes both the annotation
// cafe.io/force-delete=true on the pod and RBAC verb force-delete on pods
// in group cafe.io for the user who deletes (a SubjectAccessReview), so
// neither an annotation copied from a template nor an `edit` user skips
// the drain. The pod webhooks only see pods CAFE manages (objectSelectors
// on the cafe.io/inplaceset and cafe.io/cafedeployment labels), so when
// CAFE is down they fail closed for CAFE's pods and leave every other pod
// alone.
package pod

import (
	"context"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/lossless"
)

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// GuardPath is where the pod DELETE and UPDATE guard is served.
const GuardPath = "/validate-pod"

// ForceDeleteVerb is the RBAC verb, on resource pods in group cafe.io,
// that lets a user delete a serving managed pod at once (with the
// cafe.io/force-delete annotation on it). No built-in role grants it.
const ForceDeleteVerb = "force-delete"

// systemDeleters are the users whose deletions are not a choice to cut a
// pod: the namespace controller emptying a namespace a cluster admin
// deletes, and the pod garbage collector removing pods whose node is gone
// (they serve nobody). The garbage collector, ReplicaSet and StatefulSet
// controllers are not among them: they delete what a namespace user asked
// for (deleting or scaling a pod set), so their deletes drain first.
var systemDeleters = map[string]bool{
	"system:serviceaccount:kube-system:namespace-controller":  true,
	"system:serviceaccount:kube-system:pod-garbage-collector": true,
}

// Guard refuses deleting a managed pod that still takes traffic, recording
// a drain request on it instead, and refuses updates that would take the
// pod out of CAFE's hands (update.go).
type Guard struct {
	// Client writes drain requests and creates SubjectAccessReviews.
	Client client.Client
	// Slices reads the EndpointSlices that list a pod.
	Slices *lossless.Slices
	// CAFE names the identity that alone may record a drain request
	// (cafe.io/drain-requested-by) on a pod.
	CAFE *admit.Self
}

// Handle implements admission.Handler.
func (h *Guard) Handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Delete:
		return h.handleDelete(ctx, req)
	case admissionv1.Update:
		return h.handleUpdate(ctx, req)
	}
	return admission.Allowed("")
}

func (h *Guard) handleDelete(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := admit.Decode(req.OldObject, pod, "pod"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	reason, err := h.mayDelete(ctx, pod, req.UserInfo)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if reason != "" {
		return admission.Allowed(reason)
	}
	if err := requestDrain(ctx, h.Client, pod, req); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.Denied(fmt.Sprintf("pod %s is managed by CAFE and still takes traffic: a drain was requested, and CAFE deletes and replaces the pod once every traffic system has let go of it. "+
		"To delete it at once regardless, a user granted verb %q on pods in group cafe.io sets the annotation %s=true on the pod first", pod.Name, ForceDeleteVerb, cafev1alpha1.ForceDeleteAnnotation))
}

// mayDelete returns why the deletion may go ahead now, or "" if it must
// wait for a drain.
func (h *Guard) mayDelete(ctx context.Context, pod *corev1.Pod, user authenticationv1.UserInfo) (string, error) {
	if !managedBy(pod) {
		return "not managed by CAFE", nil
	}
	if systemDeleters[user.Username] {
		return "deleted by " + user.Username, nil
	}
	if reason := mayGo(ctx, h.Slices, pod); reason != "" {
		return reason, nil
	}
	if pod.Annotations[cafev1alpha1.ForceDeleteAnnotation] != "true" {
		return "", nil
	}
	allowed, _, err := admit.MayUser(ctx, h.Client, user, authorizationv1.ResourceAttributes{
		Namespace: pod.Namespace, Name: pod.Name, Verb: ForceDeleteVerb, Group: cafev1alpha1.GroupVersion.Group, Resource: "pods",
	})
	if err != nil || !allowed {
		return "", err
	}
	return "forced by " + user.Username, nil
}
