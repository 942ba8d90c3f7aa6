package cafedeployment_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

// F9: a fast release (one group, no confirmation) is in the
// CafeDeployment's record with the user CAFE's webhook stamped as having
// asked for it.
func TestSecurityF9_FastReleaseIsRecordedWithItsAuthor(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	cd := newCafeDeployment(ns, "pay", "pay:v1")
	createDeployment(ctx, t, g, cd)
	g.Eventually(func(g Gomega) { g.Expect(getDeployment(ctx, g, cd).Status.UpdateRevision).NotTo(BeEmpty()) }).Should(Succeed())

	var hash string
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) {
		cd.Spec.Template.Spec.Containers[0].Image = "pay:v2"
		hash = revision.TemplateHash(&cd.Spec.Template)
		// As the webhook leaves it after `cafe deploy rollback --fast` by dev.
		cd.Annotations = map[string]string{cafev1alpha1.FastReleaseAnnotation: hash, cafev1alpha1.FastReleaseByAnnotation: "dev"}
	})
	g.Eventually(func(g Gomega) {
		list := &eventsv1.EventList{}
		g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range list.Items {
			if e.Reason == "FastRelease" && e.Regarding.Name == "pay" {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(strings.Join(notes, "\n")).To(ContainSubstring("Revision " + hash + " is released fast (one group, no confirmation), asked for by dev"))
	}, "60s").Should(Succeed())
}
