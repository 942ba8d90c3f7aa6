package seal

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestClockStrictlyIncreasesWithinOneMicrosecond(t *testing.T) {
	g := NewWithT(t)
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	c := &Clock{Now: func() time.Time { return at }}
	a, b := c.Next(), c.Next()
	g.Expect(b.Time).To(Equal(a.Add(time.Microsecond)))
}

func TestSealCoversTheStamp(t *testing.T) {
	g := NewWithT(t)
	k, other := NewKey([]byte("0123456789abcdef0123456789abcdef")), NewKey([]byte("fedcba9876543210fedcba9876543210"))
	at := metav1.NewMicroTime(time.Date(2026, 5, 1, 9, 0, 0, 1000, time.UTC))
	a := cafev1alpha1.ReleaseActionSpec{Order: "weekly", Action: cafev1alpha1.ActionApprove, Actor: "bob", AdmittedAt: &at}
	a.Seal = k.Action("shop", a)
	g.Expect(k.VerifyAction("shop", a)).To(Succeed())
	g.Expect(other.VerifyAction("shop", a)).To(MatchError(ErrUnsealed), "another key")
	g.Expect(k.VerifyAction("bank", a)).To(MatchError(ErrUnsealed), "another namespace")
	for name, change := range map[string]func(*cafev1alpha1.ReleaseActionSpec){
		"actor":  func(s *cafev1alpha1.ReleaseActionSpec) { s.Actor = "mallory" },
		"groups": func(s *cafev1alpha1.ReleaseActionSpec) { s.ActorGroups = []string{"admins"} },
		"action": func(s *cafev1alpha1.ReleaseActionSpec) { s.Action = cafev1alpha1.ActionStart },
		"order":  func(s *cafev1alpha1.ReleaseActionSpec) { s.Order = "other" },
		"time":   func(s *cafev1alpha1.ReleaseActionSpec) { s.AdmittedAt = &metav1.MicroTime{Time: at.Add(time.Hour)} },
		"none":   func(s *cafev1alpha1.ReleaseActionSpec) { s.Seal = "" },
	} {
		changed := a
		change(&changed)
		g.Expect(k.VerifyAction("shop", changed)).To(MatchError(ErrUnsealed), name)
	}
	o := cafev1alpha1.ReleaseOrderSpec{Title: "t", RequestedBy: "alice"}
	o.Seal = k.Order("shop", o)
	g.Expect(k.VerifyOrder("shop", o)).To(Succeed())
	o.RequestedBy = "bob"
	g.Expect(k.VerifyOrder("shop", o)).To(MatchError(ErrUnsealed))
	g.Expect(Key{}.VerifyOrder("shop", o)).To(MatchError(ErrUnsealed), "no key verifies nothing")
}
