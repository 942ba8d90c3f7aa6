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

var order = Subject{Namespace: "shop", Name: "weekly", UID: "5b1c8a8e-0000-4000-8000-000000000001"}

func newSigner(t *testing.T) (Signer, ed25519.PublicKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{Key: key}, pub
}

func entryAt(i int) cafev1alpha1.AuditEntry {
	at := time.Date(2026, 11, 26, 9, 0, 0, 123456789, time.UTC)
	return cafev1alpha1.AuditEntry{
		Time: metav1.NewMicroTime(at.Add(time.Duration(i) * time.Second)), Actor: "alice", Action: "Approve",
		Target: "order/o1", Before: "PendingApproval", After: "Approved", Reason: "looks good",
	}
}

func trailOf(s Signer, n int) []cafev1alpha1.AuditEntry {
	var trail []cafev1alpha1.AuditEntry
	for i := range n {
		trail = s.Append(order, trail, entryAt(i))
	}
	return trail
}

// recordOf is a trail with its signed head, as CAFE writes it.
func recordOf(s Signer, n int) Record {
	trail := trailOf(s, n)
	return Record{Subject: order, Trail: trail, Head: s.Head(order, trail), Progressed: true}
}

func TestAnUntouchedTrailVerifiesAfterAStorageRoundTrip(t *testing.T) {
	g := NewWithT(t)
	s, pub := newSigner(t)
	r := recordOf(s, 4)
	g.Expect(r.Trail[0].Seq).To(BeEquivalentTo(1))
	g.Expect(r.Trail[0].PrevHash).To(BeEmpty())
	g.Expect(r.Trail[3].PrevHash).To(Equal(r.Trail[2].Hash))
	g.Expect(r.Trail[0].KeyID).To(Equal(KeyID(pub)))

	// As the API server stores it: JSON, times to the microsecond.
	data, err := json.Marshal(r.Trail)
	g.Expect(err).NotTo(HaveOccurred())
	var stored []cafev1alpha1.AuditEntry
	g.Expect(json.Unmarshal(data, &stored)).To(Succeed())
	r.Trail = stored
	rep, p := Verify(r, NewKeyRing(pub))
	g.Expect(p).To(BeNil())
	g.Expect(rep.Entries).To(Equal(4))
	g.Expect(rep.KeyIDs).To(Equal([]string{KeyID(pub), KeyID(pub), KeyID(pub), KeyID(pub)}))
	g.Expect(rep.HeadKeyID).To(Equal(KeyID(pub)))
	g.Expect(CheckIntact(r, NewKeyRing(pub))).To(BeNil())
}

func TestAnOrderNotYetProcessedHasNoTrailAndVerifies(t *testing.T) {
	g := NewWithT(t)
	_, pub := newSigner(t)
	_, p := Verify(Record{Subject: order}, NewKeyRing(pub))
	g.Expect(p).To(BeNil())
}

func TestVerifyNamesTheFirstEntryThatDoesNotHold(t *testing.T) {
	s, pub := newSigner(t)
	other, _ := newSigner(t)
	tests := []struct {
		name   string
		tamper func(Record) Record
		index  int
		reason string
	}{
		{"an edited actor", func(r Record) Record { r.Trail[2].Actor = "mallory"; return r }, 2, "altered"},
		{"an edited time", func(r Record) Record {
			r.Trail[1].Time = metav1.NewMicroTime(r.Trail[1].Time.Add(time.Hour))
			return r
		}, 1, "altered"},
		{"an edit re-hashed without the key", func(r Record) Record {
			r.Trail[2].Reason = "approved by the board"
			r.Trail[2].Hash = Digest(order, r.Trail[2])
			return r
		}, 2, "signature"},
		{"a group added to the actor", func(r Record) Record {
			r.Trail[2].ActorGroups = []string{"dir:release-approvers"}
			return r
		}, 2, "altered"},
		{"a removed entry", func(r Record) Record { r.Trail = append(r.Trail[:1], r.Trail[2:]...); return r }, 1, "removed"},
		{"a removed and renumbered entry", func(r Record) Record {
			r.Trail = append(r.Trail[:1], r.Trail[2:]...)
			for i := range r.Trail {
				r.Trail[i].Seq = int64(i + 1)
			}
			return r
		}, 1, "prevHash"},
		{"a trail continued with another key", func(r Record) Record {
			r.Trail = other.Append(order, r.Trail[:3], r.Trail[3])
			r.Head = other.Head(order, r.Trail)
			return r
		}, 3, "not among the trusted keys"},
		{"a trail continued with another key under a trusted key's ID", func(r Record) Record {
			e := r.Trail[3]
			r.Trail = other.Append(order, r.Trail[:3], e)
			r.Trail[3].KeyID = KeyID(pub)
			r.Trail[3].Hash = Digest(order, r.Trail[3])
			return r
		}, 3, "signature is not key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, p := Verify(tt.tamper(recordOf(s, 4)), NewKeyRing(pub))
			g.Expect(p).NotTo(BeNil())
			g.Expect(p.Index).To(Equal(tt.index))
			g.Expect(p.Error()).To(ContainSubstring(tt.reason))
		})
	}
}

// The pure part of the finding-4 probes: what a status patcher (or anyone
// past the API server's rules: etcd, an export file) can do to a trail.
func TestSecurityF4_TruncatedTrailFailsAgainstItsSignedHead(t *testing.T) {
	g := NewWithT(t)
	s, pub := newSigner(t)
	r := recordOf(s, 6)
	r.Trail = r.Trail[:5] // JSON patch remove /status/audit/5
	_, p := Verify(r, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Error()).To(Equal("trail: the signed head counts 6 entries but the trail has 5: the trail was truncated (entries 6 to 6 are missing)"))
	g.Expect(CheckIntact(r, NewKeyRing(pub))).NotTo(BeNil(), "the controller does not chain onto it")

	// Truncated together with its head: the trail's length is unproven.
	r.Head = nil
	_, p = Verify(r, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Error()).To(ContainSubstring("no signed head"))

	// A head re-pointed at the shorter trail is not CAFE's.
	r.Head = s.Head(order, trailOf(s, 6))
	r.Head.Count, r.Head.Hash = 5, r.Trail[4].Hash
	_, p = Verify(r, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Error()).To(ContainSubstring("the head's signature is not key"))
}

func TestSecurityF4_EmptiedTrailFailsForAnOrderThatProgressed(t *testing.T) {
	g := NewWithT(t)
	s, pub := newSigner(t)
	r := recordOf(s, 6)
	r.Trail = nil
	_, p := Verify(r, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Error()).To(ContainSubstring("the trail was truncated (entries 1 to 6 are missing)"))
	r.Head = nil
	_, p = Verify(r, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Error()).To(ContainSubstring("the trail was emptied"))
}

func TestSecurityF4_ReorderedTrailFails(t *testing.T) {
	g := NewWithT(t)
	s, pub := newSigner(t)
	r := recordOf(s, 6)
	r.Trail[2], r.Trail[3] = r.Trail[3], r.Trail[2]
	r.Trail[2].Seq, r.Trail[3].Seq = 3, 4 // renumbered too
	_, p := Verify(r, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Index).To(Equal(2))
	g.Expect(p.Error()).To(ContainSubstring("prevHash does not match"))
}

func TestSecurityF4_TransplantedTrailFails(t *testing.T) {
	s, pub := newSigner(t)
	for name, to := range map[string]Subject{
		"to another order":                  {Namespace: "shop", Name: "monthly", UID: order.UID},
		"to another namespace":              {Namespace: "bank", Name: "weekly", UID: order.UID},
		"to a recreated order of that name": {Namespace: "shop", Name: "weekly", UID: "5b1c8a8e-0000-4000-8000-000000000002"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := recordOf(s, 6)
			r.Subject = to
			_, p := Verify(r, NewKeyRing(pub))
			g.Expect(p).NotTo(BeNil())
			g.Expect(p.Index).To(Equal(0))
			g.Expect(p.Error()).To(ContainSubstring("copied from another object's trail"))
		})
	}
}

func TestSecurityF4_RetiredKeysStillVerifyOldEntries(t *testing.T) {
	g := NewWithT(t)
	oldKey, oldPub := newSigner(t)
	newKey, newPub := newSigner(t)
	// Entries 1-3 before the rotation, 4-5 after; the head is the new key's.
	trail := trailOf(oldKey, 3)
	for i := 3; i < 5; i++ {
		trail = newKey.Append(order, trail, entryAt(i))
	}
	r := Record{Subject: order, Trail: trail, Head: newKey.Head(order, trail), Progressed: true}
	rep, p := Verify(r, Bundle{Current: newPub, Retired: []ed25519.PublicKey{oldPub}}.Ring())
	g.Expect(p).To(BeNil())
	g.Expect(rep.KeyIDs).To(Equal([]string{KeyID(oldPub), KeyID(oldPub), KeyID(oldPub), KeyID(newPub), KeyID(newPub)}))
	g.Expect(rep.HeadKeyID).To(Equal(KeyID(newPub)))

	// Without the retired key, the old entries are not trusted.
	_, p = Verify(r, NewKeyRing(newPub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Index).To(Equal(0))
	g.Expect(p.Error()).To(ContainSubstring("signed by key %q, which is not among the trusted keys", KeyID(oldPub)))
}

func TestKeysRoundTripThroughPEM(t *testing.T) {
	g := NewWithT(t)
	_, a := newSigner(t)
	_, b := newSigner(t)
	data, err := EncodeKeys(Bundle{Current: a, Retired: []ed25519.PublicKey{b}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(data)).To(ContainSubstring("# CAFE audit key " + KeyID(a) + " (current)"))
	keys, err := ParseKeys(data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(NewKeyRing(keys...).IDs()).To(ConsistOf(KeyID(a), KeyID(b)))
	_, err = ParseKeys([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	g.Expect(err).To(HaveOccurred())
}

// An entry's actor groups are covered by its hash (a group removed is
// detected), and an entry without them hashes exactly as entries did before
// the field existed, so trails written then still verify.
func TestActorGroupsAreHashedAndOldEntriesKeepTheirHash(t *testing.T) {
	g := NewWithT(t)
	s, pub := newSigner(t)
	e := entryAt(0)
	e.ActorGroups = []string{"dir:app-dev", "system:authenticated"}
	trail := s.Append(order, nil, e)
	rec := Record{Subject: order, Trail: trail, Head: s.Head(order, trail), Progressed: true}
	_, p := Verify(rec, NewKeyRing(pub))
	g.Expect(p).To(BeNil())
	rec.Trail[0].ActorGroups = rec.Trail[0].ActorGroups[:1]
	_, p = Verify(rec, NewKeyRing(pub))
	g.Expect(p).NotTo(BeNil())
	g.Expect(p.Error()).To(ContainSubstring("altered"))

	// The canonical form before actorGroups, field for field.
	type before struct {
		Subject  Subject `json:"subject"`
		Seq      int64   `json:"seq"`
		Time     string  `json:"time"`
		Actor    string  `json:"actor"`
		Action   string  `json:"action"`
		Target   string  `json:"target"`
		Before   string  `json:"before"`
		After    string  `json:"after"`
		Reason   string  `json:"reason"`
		KeyID    string  `json:"keyID"`
		PrevHash string  `json:"prevHash"`
	}
	old := s.Append(order, nil, entryAt(1))[0]
	g.Expect(old.Hash).To(Equal(sha256Hex(before{Subject: order, Seq: old.Seq, Time: old.Time.UTC().Format(timeFormat), Actor: old.Actor,
		Action: old.Action, Target: old.Target, Before: old.Before, After: old.After, Reason: old.Reason, KeyID: old.KeyID, PrevHash: old.PrevHash})))
}
