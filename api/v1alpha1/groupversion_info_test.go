package v1alpha1

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestAddToSchemeRegistersEveryKind(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(AddToScheme(scheme)).To(Succeed())
	for _, kind := range []string{"CafeDeployment", "CafeDeploymentList", "InPlaceSet", "InPlaceSetList"} {
		obj, err := scheme.New(GroupVersion.WithKind(kind))
		g.Expect(err).NotTo(HaveOccurred(), kind)
		g.Expect(obj).NotTo(BeNil(), kind)
	}
}
