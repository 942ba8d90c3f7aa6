package cafedeployment

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/builders"
)

func TestATrafficStepMustFollowAGroupBeforeTheLast(t *testing.T) {
	g := NewWithT(t)
	// 6 pods over three zones: the beta group (3 pods), then 3 in groups of
	// 2: three groups, 0 to 2.
	cd := builders.CafeDeployment("shop", "web", "app:v1", cafev1alpha1.CafeDeploymentStrategy{
		UpgradeType: cafev1alpha1.UpgradeTypeBeta, BatchSize: ptr.To(intstr.FromInt32(2)),
	})
	step := func(group int32) {
		cd.Spec.Strategy.Traffic = &cafev1alpha1.TrafficStrategy{Route: "web", Service: "web", Steps: []cafev1alpha1.TrafficStep{{Group: group, Weight: ptr.To[int32](10)}}}
	}
	step(0)
	g.Expect(validate(cd)).To(Succeed())
	step(1)
	g.Expect(validate(cd)).To(Succeed())
	step(2)
	g.Expect(validate(cd)).To(MatchError("spec.strategy.traffic.steps[0].group: Invalid value: 2: the release has 3 groups (0 to 2); a step must follow a group before the last"))
	step(7)
	g.Expect(validate(cd)).To(MatchError(ContainSubstring("spec.strategy.traffic.steps[0].group: Invalid value: 7")))
}

func TestAnOverrideOfAnAnalysisIsStampedWithTheUserAndNeedsAReason(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	old := builders.CafeDeployment("shop", "web", "app:v1", cafev1alpha1.CafeDeploymentStrategy{})
	withOverride := func(reason string) *cafev1alpha1.CafeDeployment {
		cd := old.DeepCopy()
		cd.Annotations = map[string]string{cafev1alpha1.OverrideAnalysisGroupAnnotation: "0", cafev1alpha1.OverrideAnalysisReasonAnnotation: reason}
		return cd
	}

	cd := withOverride("known false positive, INC-4711")
	stamped, err := stamp(old, cd, "alice", now)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stamped).To(BeTrue())
	g.Expect(cd.Annotations).To(HaveKeyWithValue(cafev1alpha1.AnalysisOverriddenByAnnotation, "alice"))
	g.Expect(cd.Annotations).To(HaveKeyWithValue(cafev1alpha1.AnalysisOverriddenAtAnnotation, "2026-12-06T03:00:00Z"))

	_, err = stamp(old, withOverride("  "), "alice", now)
	g.Expect(err).To(MatchError(ContainSubstring("metadata.annotations[cafe.io/override-analysis-reason]: Required value")))

	forged := withOverride("because")
	forged.Annotations[cafev1alpha1.AnalysisOverriddenByAnnotation] = "bob"
	_, err = stamp(old, forged, "alice", now)
	g.Expect(err).To(MatchError(ContainSubstring("metadata.annotations[cafe.io/analysis-overridden-by]: set by CAFE from the authenticated user")))
}
