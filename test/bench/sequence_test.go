package main

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// written returns pod with one more managedFields entry (or the entry of
// the same manager replaced) stamped at second sec.
func written(pod *corev1.Pod, manager, subresource string, sec int, fields string) *corev1.Pod {
	p := pod.DeepCopy()
	entry := metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, Subresource: subresource,
		Time: &metav1.Time{Time: time.Date(2026, 12, 4, 0, 0, sec, 0, time.UTC)}, FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	for i, e := range p.ManagedFields {
		if e.Manager == manager && e.Subresource == subresource {
			p.ManagedFields[i] = entry
			return p
		}
	}
	p.ManagedFields = append(p.ManagedFields, entry)
	return p
}

func TestReleasedPodSequenceNamesEachWriteAndItsWriter(t *testing.T) {
	g := NewWithT(t)
	base := stagedPod("a", 0)
	base.UID = "uid-a"
	base = written(base, "kubelet-sim", "status", 0, `{"f:status":{}}`)
	other := stagedPod("b", 0)
	other.UID = "uid-b"

	closed := written(stagedPod("a", 1), "cafe", "status", 1, `{"f:status":{"f:conditions":{}}}`)
	closed.UID, closed.ManagedFields = base.UID, written(base, "cafe", "status", 1, `{"f:status":{"f:conditions":{}}}`).ManagedFields
	patched := stagedPod("a", 3)
	patched.UID, patched.ManagedFields = base.UID, written(closed, "cafe", "", 2, `{"f:spec":{}}`).ManagedFields
	restarted := stagedPod("a", 4)
	restarted.UID, restarted.ManagedFields = base.UID, written(patched, "kubelet-sim", "status", 3, `{"f:status":{"f:containerStatuses":{}}}`).ManagedFields

	events := []watchrec.Event{
		{Seq: 1, ResourceVersion: 10, Type: watchrec.Added, Pod: base, Synthetic: true},
		{Seq: 2, ResourceVersion: 11, Type: watchrec.Added, Pod: other, Synthetic: true},
		{Seq: 3, ResourceVersion: 12, Type: watchrec.Modified, Pod: closed},
		{Seq: 4, ResourceVersion: 13, Type: watchrec.Modified, Pod: patched},
		{Seq: 5, ResourceVersion: 14, Type: watchrec.Modified, Pod: restarted},
	}
	name, writes := releasedPodSequence(events, imageV2)
	g.Expect(name).To(Equal("a"))
	g.Expect(writes).To(Equal([]podWrite{
		{Writers: []string{"cafe Update status"}, Changes: []string{"condition cafe.io/traffic-ready True → False"}},
		{Writers: []string{"cafe Update"}, Changes: []string{"spec image " + imageV1 + " → " + imageV2, "condition Ready True → False"}},
		{Writers: []string{"kubelet-sim Update status"}, Changes: []string{"container app image " + imageV1 + " → " + imageV2}},
	}))
}

func TestReleasedPodSequenceOfAReplacedPodEndsWithItsDeletion(t *testing.T) {
	g := NewWithT(t)
	pod := stagedPod("old", 0)
	pod.UID = "uid-old"
	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 12, 4, 0, 0, 1, 0, time.UTC)}
	deleting = written(deleting, "kube-controller-manager", "", 1, `{}`)
	events := []watchrec.Event{
		{Seq: 1, ResourceVersion: 10, Type: watchrec.Added, Pod: pod, Synthetic: true},
		{Seq: 2, ResourceVersion: 11, Type: watchrec.Modified, Pod: deleting},
		{Seq: 3, ResourceVersion: 12, Type: watchrec.Deleted, Pod: deleting},
	}
	name, writes := releasedPodSequence(events, imageV2)
	g.Expect(name).To(Equal("old"))
	g.Expect(writes).To(HaveLen(2))
	g.Expect(writes[0].Writers).To(Equal([]string{"kube-controller-manager Update"}))
	g.Expect(writes[0].Changes).To(Equal([]string{"deletion begins"}))
	g.Expect(writes[1].Changes).To(Equal([]string{"the pod object is removed"}))
}

func TestReleasedPodSequenceIsEmptyWhenNoPodWasReleased(t *testing.T) {
	g := NewWithT(t)
	pod := stagedPod("a", 0)
	name, writes := releasedPodSequence([]watchrec.Event{{Seq: 1, ResourceVersion: 1, Type: watchrec.Added, Pod: pod, Synthetic: true}}, imageV2)
	g.Expect(name).To(BeEmpty())
	g.Expect(writes).To(BeEmpty())
}

// The tally kept pod by pod equals the tally of the whole set after every
// change, deletions included.
func TestPodTalliesFollowEachPodLikeAFullCount(t *testing.T) {
	g := NewWithT(t)
	tallies := newPodTallies(imageV2)
	pods := map[string]*corev1.Pod{}
	full := func() podTally {
		var objs []client.Object
		for _, p := range pods {
			objs = append(objs, p)
		}
		return tallyPods(objs, imageV2)
	}
	steps := []struct {
		name string
		step int
	}{{"a", 0}, {"b", 0}, {"a", 1}, {"a", 3}, {"b", 4}, {"a", 6}, {"b", 6}}
	for _, s := range steps {
		pods[s.name] = stagedPod(s.name, s.step)
		tallies.set(pods[s.name])
		g.Expect(tallies.total).To(Equal(full()), "after %s reached step %d", s.name, s.step)
	}
	g.Expect(tallies.total.settled(2)).To(BeTrue())
	delete(pods, "a")
	tallies.remove("a")
	g.Expect(tallies.total).To(Equal(full()))
	g.Expect(tallies.total.settled(2)).To(BeFalse())
}
