package inplaceset

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
)

// Finding 1: a set scaled to a huge number creates at most a burst of pods
// per reconcile, whatever spec.replicas says.
func TestSecurityF1c_PlannerCreatesAtMostABurstPerSync(t *testing.T) {
	g := NewWithT(t)
	out := plan(planInput{Replicas: 100000000, Partition: 40000000, MaxUnavailable: 1, Now: now})
	g.Expect(out.CreateUpdated + out.CreateCurrent).To(Equal(maxCreatesPerSync))
	g.Expect(out.CreateUpdated).To(Equal(maxCreatesPerSync), "the updated pods are still created first")

	out = plan(planInput{Replicas: 3, MaxUnavailable: 1, Now: now})
	g.Expect(out.CreateUpdated).To(Equal(3), "a small set is created at once")
}

// Finding 1: creates go in batches of 1, 2, 4, ... and stop after the first
// batch that failed, so a refused create (quota) costs one call per sync,
// not one per missing pod.
func TestSecurityF1c_CreatesUseSlowStart(t *testing.T) {
	g := NewWithT(t)
	var calls atomic.Int32
	made, err := slowStart(maxCreatesPerSync, func(int) error { calls.Add(1); return errors.New("exceeded quota") })
	g.Expect(err).To(MatchError(ContainSubstring("exceeded quota")))
	g.Expect(made).To(Equal(1))
	g.Expect(calls.Load()).To(Equal(int32(1)))

	calls.Store(0)
	made, err = slowStart(100, func(i int) error {
		calls.Add(1)
		if i == 5 {
			return fmt.Errorf("refused %d", i)
		}
		return nil
	})
	g.Expect(err).To(MatchError("refused 5"))
	g.Expect(made).To(Equal(7), "batches 1, 2 and 4: the one holding the failure is the last")
	g.Expect(calls.Load()).To(Equal(int32(7)))

	made, err = slowStart(100, func(int) error { return nil })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(made).To(Equal(100))
}

// Finding 8: when every pod asks to migrate (a template-copied
// cafe.io/migration-requested, or a hostile reporter), each plan fed the
// pods the previous one created never takes the set beyond twice its
// replicas: migrating pods still count.
func TestSecurityF8b_MigratingPodsNeverMultiplyInThePlan(t *testing.T) {
	g := NewWithT(t)
	const replicas = 3
	var pods []podState
	for i := range replicas {
		pods = append(pods, serving(fmt.Sprintf("p%d", i)).updated().migrating())
	}
	for round := range 5 {
		out := plan(planInput{Replicas: replicas, MaxUnavailable: 1, Now: now, Pods: pods})
		for i := range out.CreateUpdated + out.CreateCurrent {
			pods = append(pods, serving(fmt.Sprintf("r%d-%d", round, i)).updated().migrating())
		}
		g.Expect(len(pods)).To(BeNumerically("<=", 2*replicas), "round %d", round)
	}
}

// Finding 8: a template that carries CAFE's control annotations (admitted
// before the CRD refused them) never hands them to a pod: not to a new pod,
// and not through an in-place update, which also leaves the pod's own
// requests alone.
func TestSecurityF8d_PodsNeverInheritControlAnnotationsFromTheTemplate(t *testing.T) {
	g := NewWithT(t)
	set := &cafev1alpha1.InPlaceSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "uid"}}
	old := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"example.com/keep": "1"}}}
	hostile := old.DeepCopy()
	hostile.Annotations[cafev1alpha1.MigrationRequestedAnnotation] = "from the template"
	hostile.Annotations[cafev1alpha1.ForceDeleteAnnotation] = "true"

	pod, err := newPod(set, hostile, "h2", 0, scheme.New())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pod.Annotations).To(Equal(map[string]string{"example.com/keep": "1"}))

	running := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{cafev1alpha1.DrainRequestedByAnnotation: "alice"}}}
	patch, err := inPlacePatch(running, old, hostile, "h2", now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(patch)).NotTo(ContainSubstring(cafev1alpha1.MigrationRequestedAnnotation))
	g.Expect(string(patch)).NotTo(ContainSubstring(cafev1alpha1.ForceDeleteAnnotation))
	g.Expect(string(patch)).NotTo(ContainSubstring(cafev1alpha1.DrainRequestedByAnnotation))
}
