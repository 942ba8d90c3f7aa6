package releaseorder

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestMembersSummaryListsBothKinds(t *testing.T) {
	g := NewWithT(t)
	got := membersSummary([]appMember{
		{Kind: "pod", Name: "shop-b", Revision: "shop-r2", Place: "node-2"},
		{Kind: "classic instance", Name: "shop-vm", Revision: "shop-r2", Place: "vm-zone-c-1"},
		{Kind: "pod", Name: "shop-a", Revision: "shop-r2", Place: "node-1"},
	})
	g.Expect(got).To(Equal("1 classic instance, 2 pods: classic instance shop-vm (shop-r2 on vm-zone-c-1); pod shop-a (shop-r2 on node-1); pod shop-b (shop-r2 on node-2)"))
	g.Expect(membersSummary(nil)).To(Equal("no pod or classic instance found"))
}

func TestMembersSummaryFitsAnAuditEntry(t *testing.T) {
	g := NewWithT(t)
	var many []appMember
	for i := range 100 {
		many = append(many, appMember{Kind: "pod", Name: fmt.Sprintf("shop-%03d", i), Revision: "shop-r2", Place: "node-1"})
	}
	got := membersSummary(many)
	g.Expect(len(got)).To(BeNumerically("<=", 1024))
	g.Expect(got).To(HavePrefix("100 pods: pod shop-000 (shop-r2 on node-1); "))
	g.Expect(got).To(MatchRegexp(` … and \d+ more$`))
	shown := strings.Count(got, "pod shop-")
	g.Expect(got).To(HaveSuffix(fmt.Sprintf(" … and %d more", 100-shown)), "the count covers exactly what is not shown")
}
