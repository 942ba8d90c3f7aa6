// Package audit keeps tamper-evident audit trails: every entry's hash
// covers its fields, the object it belongs to (namespace, name, UID) and the
// previous entry's hash, and is signed with an ed25519 key that only CAFE's
// controller holds. A signed head states the trail's length and last hash.
// Anyone with the public keys can recompute a trail and learn the first
// entry that was altered, removed, reordered or copied from another object,
// and whether the trail is shorter than CAFE wrote it.
package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// timeFormat is how entry times are hashed: what the API stores for a
// MicroTime, so a stored entry hashes as it was signed.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Subject is the object a trail belongs to. Its UID is in every hash, so a
// trail copied to another object, or to a recreated one of the same name,
// does not verify there.
type Subject struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	UID       types.UID `json:"uid"`
}

// SubjectOf is the subject of an object's trail.
func SubjectOf(o metav1.Object) Subject {
	return Subject{Namespace: o.GetNamespace(), Name: o.GetName(), UID: o.GetUID()}
}

func (s Subject) String() string { return s.Namespace + "/" + s.Name + " (uid " + string(s.UID) + ")" }

// digestInput is the canonical form an entry's hash covers. encoding/json
// writes struct fields in declaration order, so the bytes are stable.
type digestInput struct {
	Subject Subject `json:"subject"`
	Seq     int64   `json:"seq"`
	Time    string  `json:"time"`
	Actor   string  `json:"actor"`
	// ActorGroups is left out when empty, so entries written before it
	// existed keep their hash.
	ActorGroups []string `json:"actorGroups,omitempty"`
	Action      string   `json:"action"`
	Target      string   `json:"target"`
	Before      string   `json:"before"`
	After       string   `json:"after"`
	Reason      string   `json:"reason"`
	KeyID       string   `json:"keyID"`
	PrevHash    string   `json:"prevHash"`
}

// headInput is the canonical form a head's signature covers.
type headInput struct {
	Head    string  `json:"head"`
	Subject Subject `json:"subject"`
	Count   int64   `json:"count"`
	Hash    string  `json:"hash"`
	KeyID   string  `json:"keyID"`
}

func sha256Hex(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding an audit record cannot fail: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Digest is the hex SHA-256 an entry of subject's trail must carry as Hash.
func Digest(s Subject, e cafev1alpha1.AuditEntry) string {
	return sha256Hex(digestInput{
		Subject: s, Seq: e.Seq, Time: e.Time.UTC().Format(timeFormat), Actor: e.Actor, ActorGroups: e.ActorGroups, Action: e.Action,
		Target: e.Target, Before: e.Before, After: e.After, Reason: e.Reason, KeyID: e.KeyID, PrevHash: e.PrevHash,
	})
}

// headDigest is what a head's signature signs.
func headDigest(s Subject, h cafev1alpha1.AuditHead) string {
	return sha256Hex(headInput{Head: "cafe-audit-head/v1", Subject: s, Count: h.Count, Hash: h.Hash, KeyID: h.KeyID})
}

// Signer appends signed entries and signs heads.
type Signer struct {
	Key ed25519.PrivateKey
}

// ID is the signing key's ID.
func (s Signer) ID() string { return KeyID(s.Key.Public().(ed25519.PublicKey)) }

func (s Signer) sign(digest string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, []byte(digest)))
}

// Append returns subject's trail with e appended: numbered after the last
// entry, chained to its hash, hashed with the subject and signed. e's Seq,
// PrevHash, Hash, Signature and KeyID are ignored; its time is kept to the
// microsecond, as stored.
func (s Signer) Append(subject Subject, trail []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
	e.Seq, e.PrevHash = 1, ""
	if n := len(trail); n > 0 {
		e.Seq, e.PrevHash = trail[n-1].Seq+1, trail[n-1].Hash
	}
	e.Time = metav1.NewMicroTime(e.Time.UTC().Truncate(time.Microsecond))
	e.KeyID = s.ID()
	e.Hash = Digest(subject, e)
	e.Signature = s.sign(e.Hash)
	return append(trail, e)
}

// Head signs the head of subject's trail: its length and last hash. An
// empty trail has no head.
func (s Signer) Head(subject Subject, trail []cafev1alpha1.AuditEntry) *cafev1alpha1.AuditHead {
	if len(trail) == 0 {
		return nil
	}
	h := cafev1alpha1.AuditHead{Count: int64(len(trail)), Hash: trail[len(trail)-1].Hash, KeyID: s.ID()}
	h.Signature = s.sign(headDigest(subject, h))
	return &h
}

// Record is what a verifier is given of one subject: its trail, its head
// and whether the subject shows that it has been processed (so it must
// have a trail).
type Record struct {
	Subject Subject
	Trail   []cafev1alpha1.AuditEntry
	Head    *cafev1alpha1.AuditHead
	// Progressed says the object shows a state only CAFE's processing
	// gives it (e.g. an order's phase): its trail cannot be empty.
	Progressed bool
}

// OrderRecord is a ReleaseOrder's record: an order with a phase has been
// processed by CAFE, whose first write records its creation.
func OrderRecord(ro *cafev1alpha1.ReleaseOrder) Record {
	return Record{Subject: SubjectOf(ro), Trail: ro.Status.Audit, Head: ro.Status.AuditHead, Progressed: ro.Status.Phase != ""}
}

// Problem says which entry of a trail fails verification and why.
type Problem struct {
	// Index is the entry's position in the trail (0-based), or -1 when the
	// trail as a whole fails (its head); Seq what the entry claims to be.
	Index  int
	Seq    int64
	Reason string
}

func (p *Problem) Error() string {
	if p.Index < 0 {
		return "trail: " + p.Reason
	}
	return fmt.Sprintf("entry %d (seq %d): %s", p.Index+1, p.Seq, p.Reason)
}

// Report is what a verified trail shows: which key signed each entry.
type Report struct {
	// Entries is the trail's length.
	Entries int
	// KeyIDs is the ID of the key that signed each entry, in trail order.
	KeyIDs []string
	// HeadKeyID signed the head.
	HeadKeyID string
}

// Verify recomputes a record with the public keys and returns the first
// thing that does not hold, or a report when everything does: every entry
// numbered 1, 2, 3… (a gap is a removal, a step back a reordering),
// chained to the previous hash, hashed from its own fields and the subject
// (an edit, or an entry copied from another object, changes the hash) and
// signed by a known key (a re-hashed edit lacks a valid signature); and the
// head, signed by a known key, counting exactly these entries and naming
// the last one's hash (a truncated or emptied trail falls short of it).
func Verify(r Record, keys KeyRing) (Report, *Problem) {
	rep := Report{Entries: len(r.Trail)}
	if p := verifyChain(r.Subject, r.Trail, keys, &rep); p != nil {
		return rep, p
	}
	return rep, verifyHead(r, keys, &rep)
}

func verifyChain(s Subject, trail []cafev1alpha1.AuditEntry, keys KeyRing, rep *Report) *Problem {
	prevHash := ""
	for i, e := range trail {
		bad := func(format string, args ...any) *Problem {
			return &Problem{Index: i, Seq: e.Seq, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case e.Seq != int64(i+1):
			return bad("expected seq %d: an entry before it was removed, or entries were reordered", i+1)
		case e.PrevHash != prevHash:
			return bad("its prevHash does not match the previous entry's hash: an entry was removed, inserted or reordered")
		case Digest(s, e) != e.Hash:
			return bad("its content does not match its hash: the entry was altered, or copied from another object's trail (this trail is %s's)", s)
		}
		pub, ok := keys[e.KeyID]
		if !ok {
			return bad("signed by key %q, which is not among the trusted keys (%s): a replaced signing key, or an entry forged with another key", e.KeyID, keys)
		}
		if !validSignature(pub, e.Hash, e.Signature) {
			return bad("its signature is not key %s's: the entry was altered and re-hashed, or signed with another key", e.KeyID)
		}
		rep.KeyIDs = append(rep.KeyIDs, e.KeyID)
		prevHash = e.Hash
	}
	return nil
}

func verifyHead(r Record, keys KeyRing, rep *Report) *Problem {
	bad := func(format string, args ...any) *Problem {
		return &Problem{Index: -1, Reason: fmt.Sprintf(format, args...)}
	}
	h, n := r.Head, int64(len(r.Trail))
	switch {
	case h == nil && n > 0:
		return bad("%d entries but no signed head: the trail's length cannot be proven (its head was removed)", n)
	case h == nil && r.Progressed:
		return bad("the object has progressed but its trail is empty and has no signed head: the trail was emptied")
	case h == nil:
		return nil
	case n < h.Count:
		return bad("the signed head counts %d entries but the trail has %d: the trail was truncated (entries %d to %d are missing)", h.Count, n, n+1, h.Count)
	case n > h.Count:
		return bad("the signed head counts %d entries but the trail has %d: entries were appended without CAFE's head", h.Count, n)
	case h.Hash != r.Trail[n-1].Hash:
		return bad("the signed head names last hash %.12s… but the trail ends with %.12s…: the trail was replaced", h.Hash, r.Trail[n-1].Hash)
	}
	pub, ok := keys[h.KeyID]
	if !ok {
		return bad("the head is signed by key %q, which is not among the trusted keys (%s)", h.KeyID, keys)
	}
	if !validSignature(pub, headDigest(r.Subject, *h), h.Signature) {
		return bad("the head's signature is not key %s's for %s: the head was forged or copied from another object", h.KeyID, r.Subject)
	}
	rep.HeadKeyID = h.KeyID
	return nil
}

func validSignature(pub ed25519.PublicKey, digest, signature string) bool {
	sig, err := base64.StdEncoding.DecodeString(signature)
	return err == nil && ed25519.Verify(pub, []byte(digest), sig)
}

// CheckIntact tells whether CAFE may chain onto a trail: each entry hashes
// from its content and the previous hash, and the head, signed by a known
// key, counts the trail and names its last hash. By the chain, the head's
// signature then covers every entry. It is Verify without the per-entry
// signatures, cheap enough for every reconcile.
func CheckIntact(r Record, keys KeyRing) *Problem {
	prevHash := ""
	for i, e := range r.Trail {
		if e.Seq != int64(i+1) || e.PrevHash != prevHash || Digest(r.Subject, e) != e.Hash {
			return &Problem{Index: i, Seq: e.Seq, Reason: "the entry does not chain from its predecessor: the trail was altered"}
		}
		prevHash = e.Hash
	}
	var rep Report
	return verifyHead(r, keys, &rep)
}
