package releaseorder

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Finding 4: the requester's retentionDays (minimum 1) made CAFE delete the
// record a day after the order finished. Retention is the cluster's policy;
// the order's field can only lengthen it.
func TestSecurityF4_RequesterRetentionCannotShortenTheRecord(t *testing.T) {
	g := NewWithT(t)
	day := 24 * time.Hour
	order := func(days *int32) *cafev1alpha1.ReleaseOrder {
		return &cafev1alpha1.ReleaseOrder{Spec: cafev1alpha1.ReleaseOrderSpec{RetentionDays: days}}
	}
	_, ok := retentionOf(order(ptr.To[int32](1)), 0)
	g.Expect(ok).To(BeFalse(), "no cluster policy: kept forever, whatever the requester asked")
	keep, ok := retentionOf(order(ptr.To[int32](1)), 3650*day)
	g.Expect(ok).To(BeTrue())
	g.Expect(keep).To(Equal(3650*day), "a requester cannot shorten the policy")
	keep, _ = retentionOf(order(ptr.To[int32](7300)), 3650*day)
	g.Expect(keep).To(Equal(7300*day), "but can lengthen it")
	keep, _ = retentionOf(order(nil), 3650*day)
	g.Expect(keep).To(Equal(3650 * day))
}
