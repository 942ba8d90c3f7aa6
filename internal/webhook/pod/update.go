package pod

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// ownershipLabels are the labels that put a pod in CAFE's hands: the pod
// webhooks select CAFE's pods by them. CAFE sets them when it creates a
// pod and never changes them.
var ownershipLabels = []string{cafev1alpha1.InPlaceSetLabel, cafev1alpha1.DeploymentLabel}

// handleUpdate refuses an update that would take a managed pod out of
// CAFE's hands: removing or changing its ownership labels (the pod would
// escape the webhooks' objectSelectors), or, while it serves, releasing it
// from its controlling InPlaceSet, ReplicaSet or StatefulSet (a pod without
// one is not CAFE's: it could then be deleted undrained). The garbage
// collector orphaning a pod is refused too until CAFE has drained it.
func (h *Guard) handleUpdate(ctx context.Context, req admission.Request) admission.Response {
	pod, old := &corev1.Pod{}, &corev1.Pod{}
	if err := admit.DecodeChange(req, "pod", pod, old); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	for _, key := range ownershipLabels {
		was, had := old.Labels[key]
		if now, has := pod.Labels[key]; had && (!has || now != was) {
			return admission.Denied(fmt.Sprintf("metadata.labels[%s]: pod %s is managed by CAFE: the label cannot be removed or changed (it was %q)", key, old.Name, was))
		}
	}
	if denied := h.drainRequestUnchangedByOthers(ctx, req, old, pod); denied != nil {
		return *denied
	}
	if managedBy(old) && !sameController(old, pod) && mayGo(ctx, h.Slices, old) == "" {
		return admission.Denied(fmt.Sprintf("metadata.ownerReferences: pod %s is managed by CAFE and still takes traffic: it cannot be released from its controller %s until drained", old.Name, metav1.GetControllerOf(old).Name))
	}
	return admission.Allowed("")
}

// drainRequestUnchangedByOthers refuses anyone but CAFE setting, changing
// or removing a pod's cafe.io/drain-requested-by: the annotation names who
// asked for the drain in the record, so it is written only by CAFE's
// webhook from the authenticated identity of the delete or eviction.
func (h *Guard) drainRequestUnchangedByOthers(ctx context.Context, req admission.Request, old, pod *corev1.Pod) *admission.Response {
	key := cafev1alpha1.DrainRequestedByAnnotation
	if old.Annotations[key] == pod.Annotations[key] {
		return nil
	}
	self, err := h.CAFE.Username(ctx)
	if err != nil {
		resp := admission.Errored(http.StatusInternalServerError, err)
		return &resp
	}
	if req.UserInfo.Username == self {
		return nil
	}
	resp := admission.Denied(fmt.Sprintf("metadata.annotations[%s]: only CAFE records who asked for a pod's drain; to drain pod %s, delete or evict it (kubectl delete pod / kubectl drain)", key, old.Name))
	return &resp
}

// sameController: both pods have the same controlling owner.
func sameController(a, b *corev1.Pod) bool {
	x, y := metav1.GetControllerOf(a), metav1.GetControllerOf(b)
	return x != nil && y != nil && x.UID == y.UID && x.Kind == y.Kind
}
