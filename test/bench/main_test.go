package main

import (
	"slices"
	"testing"

	. "github.com/onsi/gomega"
)

func TestScenariosAndVariantsArePickedByKeyInTheOrderGiven(t *testing.T) {
	keys := func(s []scenario) []string {
		var out []string
		for _, sc := range s {
			out = append(out, sc.Key)
		}
		return out
	}
	all := catalog(shape{Replicas: 6})
	tests := []struct {
		names   string
		want    []string
		wantErr string
	}{
		{names: "deployment,inplaceset", want: []string{"deployment", "inplaceset"}},
		{names: " app-rollback ", want: []string{"app-rollback"}},
		{names: "inplaceset,nope", wantErr: `-scenarios: unknown scenario "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.names, func(t *testing.T) {
			got, err := selectScenarios(all, tt.names)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(keys(got), tt.want) {
				t.Fatalf("got %v, %v; want %v", keys(got), err, tt.want)
			}
		})
	}

	if _, err := selectNodeFailureVariants("cafe,nope"); err == nil || err.Error() != `-node-failure-variants: unknown variant "nope"` {
		t.Fatalf("unknown variant: error %v", err)
	}
	variants, err := selectNodeFailureVariants("upstream,cafe")
	if err != nil || len(variants) != 2 || variants[0].Key != "upstream" || variants[1].Key != "cafe" {
		t.Fatalf("got %+v, %v; want upstream then cafe", variants, err)
	}
}

func TestThePreambleQuotesTheCommandThatRan(t *testing.T) {
	g := NewWithT(t)
	o := options{Scenarios: "inplaceset,deployment", Out: defaultOut}
	g.Expect(o.selection()).To(Equal("-scenarios inplaceset,deployment"))
	o.Scale = true
	o.applyScale()
	g.Expect(o.selection()).To(Equal("-scale"), "the scale variant's scenarios are its own, not a flag given")
}
