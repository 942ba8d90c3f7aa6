// Package audit keeps tamper-evident audit trails: every entry's hash
// covers its fields and the previous entry's hash, and is signed with an
// ed25519 key that only CAFE's controller holds. Anyone with the public key
// can recompute a trail and learn the first entry that was altered, removed
// or reordered.
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

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// timeFormat is how entry times are hashed: what the API stores for a
// MicroTime, so a stored entry hashes as it was signed.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

// digestInput is the canonical form an entry's hash covers. encoding/json
// writes struct fields in declaration order, so the bytes are stable.
type digestInput struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Target   string `json:"target"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Reason   string `json:"reason"`
	PrevHash string `json:"prevHash"`
}

// Digest is the hex SHA-256 an entry's Hash must equal.
func Digest(e cafev1alpha1.AuditEntry) string {
	data, err := json.Marshal(digestInput{
		Seq: e.Seq, Time: e.Time.UTC().Format(timeFormat), Actor: e.Actor, Action: e.Action,
		Target: e.Target, Before: e.Before, After: e.After, Reason: e.Reason, PrevHash: e.PrevHash,
	})
	if err != nil {
		panic(fmt.Sprintf("encoding an audit entry cannot fail: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Signer appends signed entries.
type Signer struct {
	Key ed25519.PrivateKey
}

// Append returns the trail with e appended: numbered after the last entry,
// chained to its hash, hashed and signed. e's Seq, PrevHash, Hash and
// Signature are ignored; its time is kept to the microsecond, as stored.
func (s Signer) Append(trail []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
	e.Seq, e.PrevHash = 1, ""
	if n := len(trail); n > 0 {
		e.Seq, e.PrevHash = trail[n-1].Seq+1, trail[n-1].Hash
	}
	e.Time = metav1.NewMicroTime(e.Time.UTC().Truncate(time.Microsecond))
	e.Hash = Digest(e)
	e.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, []byte(e.Hash)))
	return append(trail, e)
}

// Problem says which entry of a trail fails verification and why.
type Problem struct {
	// Index is the entry's position in the trail (0-based); Seq what it
	// claims to be.
	Index  int
	Seq    int64
	Reason string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("entry %d (seq %d): %s", p.Index+1, p.Seq, p.Reason)
}

// Verify recomputes the trail with the public key and returns the first
// entry that does not hold, or nil when every entry does: numbered
// 1, 2, 3… (a gap is a removal, a step back a reordering), chained to the
// previous hash, hashed from its own fields (an edit changes the hash) and
// signed by the key (a re-hashed edit lacks a valid signature).
func Verify(trail []cafev1alpha1.AuditEntry, pub ed25519.PublicKey) *Problem {
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
		case Digest(e) != e.Hash:
			return bad("its content does not match its hash: the entry was altered")
		}
		sig, err := base64.StdEncoding.DecodeString(e.Signature)
		if err != nil || !ed25519.Verify(pub, []byte(e.Hash), sig) {
			return bad("its signature is not CAFE's: the entry was altered and re-hashed, or signed with another key")
		}
		prevHash = e.Hash
	}
	return nil
}
