package cafeappservice

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// cdPausedBy is a paused CafeDeployment whose pause manager last set.
func cdPausedBy(manager string) *cafev1alpha1.CafeDeployment {
	cd := &cafev1alpha1.CafeDeployment{}
	cd.Spec.Strategy.Pause = true
	cd.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: string(fieldOwner), Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:template":{}}}`)}},
		{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:strategy":{"f:pause":{}}}}`)}},
	}
	return cd
}

// A publish replaces the CafeDeployment's spec: a pause an order (or
// `cafe deploy pause`) set survives it, one the app set follows the app.
func TestResolvePause(t *testing.T) {
	g := NewWithT(t)
	g.Expect(resolvePause(cdPausedBy("cafe-releaseorder"), false)).To(BeTrue(), "an order's pause is kept")
	g.Expect(resolvePause(cdPausedBy(string(fieldOwner)), false)).To(BeFalse(), "the app's own pause is lifted with the app's")
	g.Expect(resolvePause(&cafev1alpha1.CafeDeployment{}, true)).To(BeTrue(), "the app pauses")
	g.Expect(resolvePause(&cafev1alpha1.CafeDeployment{}, false)).To(BeFalse())
}
