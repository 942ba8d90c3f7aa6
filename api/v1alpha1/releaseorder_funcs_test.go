package v1alpha1_test

import (
	"testing"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// app builds an order entry: app("b", "a") is b depending on a.
func app(name string, deps ...string) cafev1alpha1.ReleaseOrderApp {
	return cafev1alpha1.ReleaseOrderApp{Name: name, Revision: name + "-r2", DependsOn: deps}
}

func TestDependencyCycle(t *testing.T) {
	tests := []struct {
		name string
		apps []cafev1alpha1.ReleaseOrderApp
		want []string
	}{
		{"a chain with an independent app has no cycle", []cafev1alpha1.ReleaseOrderApp{app("a"), app("b", "a"), app("c", "b"), app("d")}, nil},
		{"a diamond has no cycle", []cafev1alpha1.ReleaseOrderApp{app("a"), app("b", "a"), app("c", "a"), app("d", "b", "c")}, nil},
		{"two apps depending on each other are a cycle", []cafev1alpha1.ReleaseOrderApp{app("a", "b"), app("b", "a")}, []string{"a", "b", "a"}},
		{"a three-app loop is named in full", []cafev1alpha1.ReleaseOrderApp{app("x"), app("a", "c"), app("b", "a"), app("c", "b")}, []string{"a", "c", "b", "a"}},
		{"an app depending on itself is a cycle", []cafev1alpha1.ReleaseOrderApp{app("a", "a")}, []string{"a", "a"}},
		{"a dependency outside the order is ignored", []cafev1alpha1.ReleaseOrderApp{app("a", "zz")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := cafev1alpha1.ReleaseOrderSpec{Apps: tt.apps}
			NewWithT(t).Expect(spec.DependencyCycle()).To(Equal(tt.want))
		})
	}
}
