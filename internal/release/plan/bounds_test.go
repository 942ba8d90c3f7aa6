package plan

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Finding 1: the planner runs in the webhooks and the controller; a spec
// the API should have refused (an older CRD, validation off) is refused
// here too, at once and without allocating a group per pod.
func TestSecurityF1b_PlannerRefusesHugeReplicasWithoutAllocating(t *testing.T) {
	g := NewWithT(t)
	for _, spec := range []cafev1alpha1.CafeDeploymentSpec{
		newSpec(2000000000, abc),
		newSpec(50000000, abc, batchSize(n(1))),
		newSpec(cafev1alpha1.MaxReplicas, abc, batchSize(n(1)), unitByUnit),
	} {
		var err error
		allocs := testing.AllocsPerRun(3, func() { _, err = New(spec) })
		var specErr *SpecError
		g.Expect(errors.As(err, &specErr)).To(BeTrue(), "%s: got %v", describe(spec), err)
		g.Expect(specErr.Field).To(BeElementOf("spec.replicas", "spec.strategy.batchSize"))
		g.Expect(allocs).To(BeNumerically("<", 200), "%s", describe(spec))
	}
}

// Finding 11: status.release.groups holds 512 groups; the planner never
// makes a plan with more, and the largest spec it accepts is exactly the
// one the CRD's rule accepts.
func TestSecurityF11b_PlannerRefusesMoreGroupsThanStatusHolds(t *testing.T) {
	g := NewWithT(t)
	fits, err := New(newSpec(cafev1alpha1.MaxReleaseGroups, abc, batch, batchSize(n(1))))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fits.Groups).To(HaveLen(cafev1alpha1.MaxReleaseGroups))
	_, err = New(newSpec(cafev1alpha1.MaxReleaseGroups+1, abc, batch, batchSize(n(1))))
	g.Expect(err).To(HaveOccurred(), "one pod more needs a group more")

	_, err = New(newSpec(600, abc, batchSize(n(1))))
	var specErr *SpecError
	g.Expect(errors.As(err, &specErr)).To(BeTrue(), "got %v", err)
	g.Expect(specErr.Field).To(Equal("spec.strategy.batchSize"))
}
