package cafeappservice_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func classicArtifact(sha string) *cafev1alpha1.ClassicArtifact {
	return &cafev1alpha1.ClassicArtifact{URL: "http://127.0.0.1:1/app.tar.gz", SHA256: sha, Command: []string{"bin/app"}, Port: 8080,
		Env: []cafev1alpha1.ClassicEnvVar{{Name: "MODE", Value: "classic"}, {Name: "GREETING", Value: "from the package"}}}
}

const (
	shaV1 = "1111111111111111111111111111111111111111111111111111111111111111"
	shaV2 = "2222222222222222222222222222222222222222222222222222222222222222"
)

// An app with classic units records the classic artifact in its revisions
// (a new artifact is a new revision) and releases a published revision to
// a CafeDeployment whose classic units run it, with the revision's config
// env given to the processes.
func TestAnAppWithClassicUnitsReleasesItsArtifactWithItsConfig(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "hybrid", "app:v1")
	app.Spec.ClassicArtifact = classicArtifact(shaV1)
	app.Spec.Workload.ClassicUnits = []string{"zone-c"}
	createApp(ctx, t, g, app)
	r1 := waitForLatest(ctx, g, app)
	g.Expect(r1.Spec.ClassicArtifact).NotTo(BeNil())
	g.Expect(r1.Spec.ClassicArtifact.SHA256).To(Equal(shaV1))

	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.ClassicArtifact.SHA256 = shaV2 })
	g.Eventually(func() string { return getApp(ctx, g, app).Status.LatestRevision }).ShouldNot(Equal(r1.Name), "a new artifact is a new revision")

	publish(ctx, g, app, r1.Name)
	cd := &cafev1alpha1.CafeDeployment{}
	g.Eventually(func() error { return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: app.Name}, cd) }).Should(Succeed())
	g.Expect(cd.Spec.Classic).NotTo(BeNil())
	g.Expect(cd.Spec.Classic.Units).To(Equal([]string{"zone-c"}))
	g.Expect(cd.Spec.Classic.Artifact.SHA256).To(Equal(shaV1))
	g.Expect(cd.Spec.Classic.Artifact.Env).To(Equal([]cafev1alpha1.ClassicEnvVar{
		{Name: "MODE", Value: "classic"}, {Name: "GREETING", Value: "hello"},
	}), "the revision's config env is given to the process, replacing the package's own value")
}

// The classic artifact and the classic units go together, and the units
// must be units of the topology.
func TestClassicUnitsOfAnAppAreValidated(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	noArtifact := newApp(ns, "a", "app:v1")
	noArtifact.Spec.Workload.ClassicUnits = []string{"zone-c"}
	g.Expect(suite.Client.Create(ctx, noArtifact)).To(MatchError(ContainSubstring("spec.classicArtifact and spec.workload.classicUnits go together")))
	noUnits := newApp(ns, "b", "app:v1")
	noUnits.Spec.ClassicArtifact = classicArtifact(shaV1)
	g.Expect(suite.Client.Create(ctx, noUnits)).To(MatchError(ContainSubstring("spec.classicArtifact and spec.workload.classicUnits go together")))
	unknown := newApp(ns, "c", "app:v1")
	unknown.Spec.ClassicArtifact = classicArtifact(shaV1)
	unknown.Spec.Workload.ClassicUnits = []string{"zone-x"}
	g.Expect(suite.Client.Create(ctx, unknown)).To(MatchError(ContainSubstring("spec.workload.classicUnits: unknown unit")))
}
