package main

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ownedPod is pod i of the endpoint-owned workload running image, Ready or
// not.
func ownedPod(i int, image string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: endpointOwnedPod(i), UID: "uid"},
		Spec:       corev1.PodSpec{NodeName: "node", Containers: []corev1.Container{{Name: containerName, Image: image}}},
		Status: corev1.PodStatus{
			PodIP:             "127.0.0.1",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, Image: image, Ready: ready}},
		},
	}
}

// publisherWithAllListed is a publisher of n pods on v1, Ready, every one
// listed by the slices as written, releasing to v2 with inFlight at most.
func publisherWithAllListed(n, inFlight int) *endpointPublisher {
	p := &endpointPublisher{n: n, inFlight: inFlight, image: imageV2, pods: map[string]*corev1.Pod{}, selected: map[string]bool{}, patching: map[string]bool{}}
	for s := 0; s*slicePods < n; s++ {
		p.slices = append(p.slices, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "s"}})
		p.listed = append(p.listed, map[string]bool{})
	}
	for i := range n {
		p.pods[endpointOwnedPod(i)] = ownedPod(i, imageV1, true)
		p.listed[i/slicePods][endpointOwnedPod(i)] = true
	}
	return p
}

func TestEndpointPublisherTakesOutOnlyWhatTheSlicesAsWrittenAllow(t *testing.T) {
	g := NewWithT(t)
	p := publisherWithAllListed(300, 20)

	p.pickPods()
	g.Expect(p.selected).To(HaveLen(20), "the in-flight bound")
	// The slices drop the 20; 5 of them come back Ready on v2.
	writes := p.sliceWrites()
	for s, es := range writes {
		p.listed[s] = listedIn(es)
	}
	g.Expect(p.servingAsWritten()).To(Equal(280))
	for i := range 5 {
		p.pods[endpointOwnedPod(i)] = ownedPod(i, imageV2, true)
	}

	p.pickPods()
	g.Expect(p.selected).To(HaveLen(15), "the 5 back are let go, but no one leaves before the slices list them again")
	g.Expect(p.selected).NotTo(HaveKey(endpointOwnedPod(0)))

	for s, es := range p.sliceWrites() {
		p.listed[s] = listedIn(es)
	}
	g.Expect(p.isListed(endpointOwnedPod(0))).To(BeTrue(), "a pod back on the image, Ready, is listed again")
	g.Expect(p.servingAsWritten()).To(Equal(285))
	p.pickPods()
	g.Expect(p.selected).To(HaveLen(20), "now listed, they make room for 5 more")
	g.Expect(p.selected).NotTo(HaveKey(endpointOwnedPod(0)), "a pod on the image is not picked again")
}

func TestEndpointPublisherListsOnlyReadyPodsNotBeingUpdated(t *testing.T) {
	g := NewWithT(t)
	p := publisherWithAllListed(100, 10)
	p.pods[endpointOwnedPod(3)] = ownedPod(3, imageV1, false)
	p.selected[endpointOwnedPod(7)] = true

	writes := p.sliceWrites()
	g.Expect(writes).To(HaveLen(1))
	listed := listedIn(writes[0])
	g.Expect(listed).To(HaveLen(98))
	g.Expect(listed).NotTo(HaveKey(endpointOwnedPod(3)), "not Ready")
	g.Expect(listed).NotTo(HaveKey(endpointOwnedPod(7)), "being updated")

	p.listed[0] = listed
	g.Expect(p.sliceWrites()).To(BeEmpty(), "nothing to write when the slices are as wanted")
}

func TestTheWorstRunIsTheOneWithMostViolationsThenMostServingDips(t *testing.T) {
	g := NewWithT(t)
	run := func(lossless, serving int) runResult {
		inv := invariants{Checked: true, MinReady: 900}
		for range lossless {
			inv.Lossless = append(inv.Lossless, "lossless")
		}
		for range serving {
			inv.ServingLevel = append(inv.ServingLevel, "serving")
		}
		return runResult{Invariants: inv}
	}
	a := aggregate{Runs: []runResult{run(0, 0), run(0, 2), run(0, 1)}}
	g.Expect(a.worstInvariants().ServingLevel).To(HaveLen(2), "serving dips decide between runs that held")
	a = aggregate{Runs: []runResult{run(0, 5), run(1, 0)}}
	g.Expect(a.worstInvariants().Lossless).To(HaveLen(1), "a judged violation outweighs any serving dip")
	g.Expect(a.worstInvariants().held()).To(BeFalse())
	g.Expect(invariants{Checked: true, ServingLevel: []string{"dip"}}.held()).To(BeTrue(), "serving dips are reported, not judged")
}
