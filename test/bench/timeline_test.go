package main

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cafe-io/cafe/test/framework/watchrec"
)

func listing(rv string, pod *corev1.Pod, ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "app-x1", ResourceVersion: rv},
		Endpoints: []discoveryv1.Endpoint{{
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod.Name, UID: pod.UID},
		}},
	}
}

// The stream of the scale run's violation: the slice lists the pod ready
// again (rv 12) after the gate closed (rv 11), and the image changes
// (rv 13) before the slice drops it. The timeline shows those steps in
// order, with their writers, and stops at the violation.
func TestLosslessTimelineTellsTheViolatingPodsStoryInStreamOrder(t *testing.T) {
	g := NewWithT(t)
	serving := stagedPod("a", 0)
	serving.UID = "uid-a"
	closed := stagedPod("a", 2)
	closed.UID, closed.ManagedFields = serving.UID, written(serving, "cafe", "status", 1, `{"f:status":{"f:conditions":{}}}`).ManagedFields
	patched := stagedPod("a", 3)
	patched.UID, patched.ManagedFields = serving.UID, written(closed, "cafe", "", 2, `{"f:spec":{}}`).ManagedFields
	restarted := stagedPod("a", 4)
	restarted.UID, restarted.ManagedFields = serving.UID, written(patched, "kubelet-sim", "status", 3, `{"f:status":{}}`).ManagedFields
	other := stagedPod("b", 0)

	events := []watchrec.Event{
		{Seq: 1, ResourceVersion: 10, Type: watchrec.Added, Pod: serving, Synthetic: true},
		{Seq: 2, ResourceVersion: 10, Type: watchrec.Added, EndpointSlice: listing("10", serving, true), Synthetic: true},
		{Seq: 3, ResourceVersion: 11, Type: watchrec.Modified, Pod: closed},
		{Seq: 5, ResourceVersion: 12, Type: watchrec.Modified, EndpointSlice: listing("12", serving, true)},
		{Seq: 4, ResourceVersion: 13, Type: watchrec.Modified, Pod: patched},
		{Seq: 6, ResourceVersion: 14, Type: watchrec.Added, Pod: other},
		{Seq: 7, ResourceVersion: 15, Type: watchrec.Modified, Pod: restarted},
		{Seq: 8, ResourceVersion: 16, Type: watchrec.Modified, EndpointSlice: listing("16", serving, false)},
	}
	vs := watchrec.CheckLossless(events)
	g.Expect(vs).To(HaveLen(1))
	g.Expect(losslessTimeline(events, vs[0])).To(Equal([]string{
		"rv=10 EndpointSlice app-x1 added: lists it ready=true serving=true",
		"rv=11 pod modified by cafe Update status: condition cafe.io/traffic-ready True → False, condition Ready True → False",
		"rv=12 EndpointSlice app-x1 modified: lists it ready=true serving=true",
		"rv=13 pod modified by cafe Update: spec image " + imageV1 + " → " + imageV2,
	}))
}
