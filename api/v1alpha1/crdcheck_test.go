package v1alpha1_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework/crdcheck"
)

// The fuzz targets trust crdcheck to admit what a cluster admits: here its
// verdict on a spread of objects, admitted and refused, must be the real
// API server's.
func TestInProcessValidatorAgreesWithTheAPIServer(t *testing.T) {
	requireAPIServer(t)
	ctx := context.Background()
	cd := func(mutate func(*cafev1alpha1.CafeDeployment)) client.Object {
		c := validCafeDeployment("crdcheck")
		mutate(c)
		return c
	}
	app := func(mutate func(*cafev1alpha1.CafeAppService)) client.Object {
		a := validApp("crdcheck")
		mutate(a)
		return a
	}
	objs := map[string]client.Object{
		"a valid CafeDeployment": cd(func(*cafev1alpha1.CafeDeployment) {}),
		"too many replicas":      cd(func(c *cafev1alpha1.CafeDeployment) { c.Spec.Replicas = ptr.To[int32](80000000) }),
		"the most groups that fit": cd(func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Replicas = ptr.To[int32](512)
			c.Spec.Strategy.BatchSize = ptr.To(intstr.FromInt32(1))
		}),
		"one group too many": cd(func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Replicas = ptr.To[int32](513)
			c.Spec.Strategy.BatchSize = ptr.To(intstr.FromInt32(1))
		}),
		"a long name":        cd(func(c *cafev1alpha1.CafeDeployment) { c.Name = strings.Repeat("a", 60) }),
		"an upper-case unit": cd(func(c *cafev1alpha1.CafeDeployment) { c.Spec.Topology.Values = []string{"A"} }),
		"a template control annotation": cd(func(c *cafev1alpha1.CafeDeployment) {
			c.Spec.Template.Annotations = map[string]string{cafev1alpha1.ForceDeleteAnnotation: "true"}
		}),
		"a malformed percentage": cd(func(c *cafev1alpha1.CafeDeployment) { c.Spec.Strategy.MinAvailable = ptr.To(intstr.FromString("half")) }),
		"a valid InPlaceSet":     validInPlaceSet("crdcheck"),
		"a valid app":            app(func(*cafev1alpha1.CafeAppService) {}),
		"an app needing too many groups": app(func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Replicas = ptr.To[int32](2000)
			a.Spec.Workload.Strategy.BatchSize = ptr.To(intstr.FromInt32(2))
		}),
	}
	for name, obj := range objs {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			g.Expect(err).NotTo(HaveOccurred())
			kind := reflect.TypeOf(obj).Elem().Name()
			v, err := crdcheck.For(kind)
			g.Expect(err).NotTo(HaveOccurred())
			inProcess := v.Admit(ctx, u)

			real := &unstructured.Unstructured{Object: mustToUnstructured(g, obj)}
			real.SetAPIVersion(cafev1alpha1.GroupVersion.String())
			real.SetKind(kind)
			serverErr := k8sClient.Create(ctx, real, client.DryRunAll)
			g.Expect(inProcess == nil).To(Equal(serverErr == nil), "in-process: %v; API server: %v", inProcess.ToAggregate(), serverErr)
		})
	}
}

func mustToUnstructured(g Gomega, obj client.Object) map[string]any {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	g.Expect(err).NotTo(HaveOccurred())
	return u
}
