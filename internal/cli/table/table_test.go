package table

import (
	"bytes"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestPrintObject(t *testing.T) {
	newApp := func() *cafev1alpha1.CafeAppService {
		return &cafev1alpha1.CafeAppService{ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "pay",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		}}
	}
	tests := []struct {
		name, format string
		want         string
		wantErr      string
	}{
		{name: "yaml prints the object as YAML", format: "yaml", want: "metadata:\n  name: pay\n  namespace: shop\n"},
		{name: "json prints the object as one line of JSON", format: "json", want: `{"metadata":{"name":"pay","namespace":"shop"}}` + "\n"},
		{name: "another format is refused, naming the flag", format: "wide", wantErr: `--output "wide": want yaml or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var out bytes.Buffer
			err := PrintObject(&out, newApp(), tt.format)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(tt.wantErr))
				g.Expect(out.String()).To(BeEmpty())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out.String()).To(Equal(tt.want), "managed fields are left out")
		})
	}
}
