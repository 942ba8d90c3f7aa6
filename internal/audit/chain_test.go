package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func newSigner(t *testing.T) (Signer, ed25519.PublicKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{Key: key}, pub
}

func trailOf(s Signer, n int) []cafev1alpha1.AuditEntry {
	var trail []cafev1alpha1.AuditEntry
	at := time.Date(2026, 11, 26, 9, 0, 0, 123456789, time.UTC)
	for i := range n {
		trail = s.Append(trail, cafev1alpha1.AuditEntry{
			Time: metav1.NewMicroTime(at.Add(time.Duration(i) * time.Second)), Actor: "alice", Action: "Approve",
			Target: "order/o1", Before: "PendingApproval", After: "Approved", Reason: "looks good",
		})
	}
	return trail
}

func TestAnUntouchedTrailVerifiesAfterAStorageRoundTrip(t *testing.T) {
	g := NewWithT(t)
	s, pub := newSigner(t)
	trail := trailOf(s, 4)
	g.Expect(trail[0].Seq).To(BeEquivalentTo(1))
	g.Expect(trail[0].PrevHash).To(BeEmpty())
	g.Expect(trail[3].PrevHash).To(Equal(trail[2].Hash))

	// As the API server stores it: JSON, times to the microsecond.
	data, err := json.Marshal(trail)
	g.Expect(err).NotTo(HaveOccurred())
	var stored []cafev1alpha1.AuditEntry
	g.Expect(json.Unmarshal(data, &stored)).To(Succeed())
	g.Expect(Verify(stored, pub)).To(BeNil())
}

func TestVerifyNamesTheFirstEntryThatDoesNotHold(t *testing.T) {
	s, pub := newSigner(t)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name   string
		tamper func([]cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry
		index  int
		reason string
	}{
		{"an edited actor", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry { tr[2].Actor = "mallory"; return tr }, 2, "altered"},
		{"an edited time", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
			tr[1].Time = metav1.NewMicroTime(tr[1].Time.Add(time.Hour))
			return tr
		}, 1, "altered"},
		{"an edit re-hashed without the key", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
			tr[2].Reason = "approved by the board"
			tr[2].Hash = Digest(tr[2])
			return tr
		}, 2, "signature"},
		{"a removed entry", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry { return append(tr[:1], tr[2:]...) }, 1, "removed"},
		{"two entries swapped", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry { tr[1], tr[2] = tr[2], tr[1]; return tr }, 1, "reordered"},
		{"a removed and renumbered entry", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
			tr = append(tr[:1], tr[2:]...)
			for i := range tr {
				tr[i].Seq = int64(i + 1)
			}
			return tr
		}, 1, "prevHash"},
		{"a trail re-signed with another key", func(tr []cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
			return Signer{Key: otherKey}.Append(tr[:3], tr[3])
		}, 3, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := Verify(tt.tamper(trailOf(s, 4)), pub)
			g.Expect(p).NotTo(BeNil())
			g.Expect(p.Index).To(Equal(tt.index))
			g.Expect(p.Error()).To(ContainSubstring(tt.reason))
		})
	}
}
