package cafeappservice

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

// A CafeDeployment's release is observed once its status names the
// revision of its whole spec: the pod template, and the classic artifact
// when it has classic units (the revision hash covers both).
func TestReleaseProgressIsObservedOnTheDeploymentsRevision(t *testing.T) {
	g := NewWithT(t)
	cd := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	cd.Spec.Template = corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}}}
	cd.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: []string{"zone-c"}, Artifact: cafev1alpha1.ClassicArtifact{SHA256: "ab", Port: 8080}}
	cd.Status.ObservedGeneration = 2

	cd.Status.UpdateRevision = revision.TemplateHash(&cd.Spec.Template)
	g.Expect(releaseProgressOf(cd).Observed).To(BeFalse(), "the pod template's hash alone is not the revision of a deployment with classic units")
	cd.Status.UpdateRevision = revision.DeploymentHash(cd)
	g.Expect(releaseProgressOf(cd).Observed).To(BeTrue())

	cd.Spec.Classic = nil
	cd.Status.UpdateRevision = revision.TemplateHash(&cd.Spec.Template)
	g.Expect(releaseProgressOf(cd).Observed).To(BeTrue(), "without classic units the revision is the template's hash, as before")
}
