package v1alpha1

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestIsTrafficFinalizer(t *testing.T) {
	tests := []struct {
		name      string
		finalizer string
		want      bool
	}{
		{name: "a provider's finalizer is a traffic finalizer", finalizer: TrafficFinalizer("endpointslice"), want: true},
		{name: "the bare prefix names no provider", finalizer: TrafficFinalizerPrefix, want: false},
		{name: "another domain's finalizer is not one", finalizer: "cafe.io/protect", want: false},
		{name: "a look-alike domain is not one", finalizer: "xtraffic.cafe.io/lb", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(IsTrafficFinalizer(tt.finalizer)).To(Equal(tt.want))
		})
	}
}
