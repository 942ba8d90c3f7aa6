package cafedeployment_test

import (
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// classicArtifact is a package for the classic units of these tests (no
// host runs it here: the ClassicSet controller is tested on its own).
func classicArtifact(version string) cafev1alpha1.ClassicArtifact {
	return cafev1alpha1.ClassicArtifact{URL: "http://127.0.0.1:1/app-" + version + ".tar.gz", SHA256: sha(version), Command: []string{"bin/app"}, Port: 8080}
}

func sha(version string) string {
	out := []byte("0000000000000000000000000000000000000000000000000000000000000000")
	copy(out[64-len(version):], version)
	for i, c := range out {
		if c < '0' || c > '9' {
			out[i] = 'a'
		}
	}
	return string(out)
}

// A CafeDeployment whose spec.classic names zone-c runs that unit as a
// ClassicSet (instances of the artifact, labelled like the pods and with
// the unit, placed on the zone's classic hosts) and the other units as pod
// sets; changing only the artifact is a new revision that changes no pod
// set's template.
func TestClassicUnitsRunAsClassicSets(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd := newCafeDeployment(ns, "mixed", "app:v1")
	cd.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: []string{"zone-c"}, Artifact: classicArtifact("v1")}
	createDeployment(ctx, t, g, cd)
	t.Cleanup(func() { _ = suite.Client.DeleteAllOf(ctx, &cafev1alpha1.ClassicSet{}, client.InNamespace(ns)) })

	set := &cafev1alpha1.ClassicSet{}
	g.Eventually(func() error {
		return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mixed-zone-c"}, set)
	}).Should(Succeed())
	g.Expect(set.Spec.Placement).To(Equal(cafev1alpha1.ClassicPlacement{Zone: "zone-c"}))
	g.Expect(set.Spec.Replicas).To(HaveValue(Equal(int32(2))), "the unit's share of the 6 replicas")
	g.Expect(set.Spec.Template.Metadata.Labels).To(Equal(map[string]string{"app": "mixed", cafev1alpha1.UnitLabel: "zone-c"}))
	g.Expect(set.Spec.Template.Artifact.SHA256).To(Equal(sha("v1")))
	g.Expect(set.Spec.Selector.MatchLabels).To(HaveKeyWithValue(cafev1alpha1.UnitLabel, "zone-c"))
	g.Expect(set.Labels).To(HaveKeyWithValue(cafev1alpha1.DeploymentLabel, "mixed"))
	for _, unit := range []string{"zone-a", "zone-b"} {
		g.Eventually(func() error {
			return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mixed-" + unit}, &cafev1alpha1.InPlaceSet{})
		}).Should(Succeed(), "unit %s runs pods", unit)
	}
	err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mixed-zone-c"}, &cafev1alpha1.InPlaceSet{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no pod set runs the classic unit: %v", err)

	before := getDeployment(ctx, g, cd).Status.UpdateRevision
	podTemplate := podSet(ctx, g, cd, "zone-a").Spec.Template
	updateDeployment(ctx, g, cd, func(c *cafev1alpha1.CafeDeployment) { c.Spec.Classic.Artifact = classicArtifact("v2") })
	g.Eventually(func() string { return getDeployment(ctx, g, cd).Status.UpdateRevision }).ShouldNot(Equal(before), "the artifact is part of the revision")
	g.Eventually(func() string {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		return set.Spec.Template.Artifact.SHA256
	}).Should(Equal(sha("v2")))
	g.Expect(podSet(ctx, g, cd, "zone-a").Spec.Template).To(Equal(podTemplate), "the pods' template is untouched")
}

// The classic units must be units of the topology, and cannot be added,
// removed or changed after creation.
func TestClassicUnitsValidation(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	bad := newCafeDeployment(ns, "bad", "app:v1")
	bad.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: []string{"zone-x"}, Artifact: classicArtifact("v1")}
	g.Expect(suite.Client.Create(ctx, bad)).To(MatchError(ContainSubstring("spec.classic.units: unknown unit; every classic unit must be listed in spec.topology.values")))

	cd := newCafeDeployment(ns, "ok", "app:v1")
	cd.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: []string{"zone-c"}, Artifact: classicArtifact("v1")}
	cd.Spec.Topology.UnitReplicas = map[string]intstr.IntOrString{"zone-c": intstr.FromInt32(1)}
	cd.Spec.Replicas = ptr.To[int32](3)
	createDeployment(ctx, t, g, cd)
	t.Cleanup(func() { _ = suite.Client.DeleteAllOf(ctx, &cafev1alpha1.ClassicSet{}, client.InNamespace(ns)) })
	// The controller writes the status meanwhile: retry on conflicts until
	// the API server judges the change itself.
	update := func(mutate func(*cafev1alpha1.CafeDeployment)) error {
		var err error
		for range 20 {
			c := getDeployment(ctx, g, cd)
			mutate(c)
			if err = suite.Client.Update(ctx, c); !apierrors.IsConflict(err) {
				return err
			}
		}
		return err
	}
	g.Expect(update(func(c *cafev1alpha1.CafeDeployment) { c.Spec.Classic = nil })).
		To(MatchError(ContainSubstring("spec.classic cannot be added or removed after creation")))
	g.Expect(update(func(c *cafev1alpha1.CafeDeployment) { c.Spec.Classic.Units = []string{"zone-b"} })).
		To(MatchError(ContainSubstring("spec.classic.units is immutable")))
}
