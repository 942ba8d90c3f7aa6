// Package seal lets CAFE's controller check that the identities it acts on
// were stamped by CAFE's own admission webhook: the webhook seals what it
// stamps (the requester of a ReleaseOrder, the actor of a ReleaseAction)
// with an HMAC-SHA256 over the stamped object, keyed by a Secret in CAFE's
// namespace that only CAFE reads; the controller verifies the seal before
// it trusts the stamp. Without the webhooks (a manager run with
// --webhook-port 0, or an edited webhook configuration) nothing carries a
// valid seal, so the controller refuses instead of trusting a
// self-declared name.
//
// The key is separate from the audit signing key (internal/audit): it
// authenticates admission to the controller, inside CAFE, and is never
// published.
package seal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// SecretName is the Secret in CAFE's namespace that holds the key.
const SecretName = "cafe-identity-seal-key"

const (
	dataKey = "hmac-sha256.key"
	keySize = 32
)

// +kubebuilder:rbac:groups="",namespace=cafe-system,resources=secrets,verbs=get;create

// Key seals and verifies stamped identities.
type Key struct{ secret []byte }

// NewKey returns a key of the given secret bytes (for tests and tools
// that play the webhook; CAFE's components use Ensure).
func NewKey(secret []byte) Key { return Key{secret: secret} }

// Ensure returns the key in the Secret, creating it at first start. Two
// components starting at once agree on one key: the loser of the create
// race reads the winner's.
func Ensure(ctx context.Context, c client.Client, namespace string) (Key, error) {
	s := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SecretName}, s)
	if apierrors.IsNotFound(err) {
		s, err = create(ctx, c, namespace)
	}
	if err != nil {
		return Key{}, fmt.Errorf("reading the identity seal key %s/%s: %w", namespace, SecretName, err)
	}
	if len(s.Data[dataKey]) != keySize {
		return Key{}, fmt.Errorf("identity seal key %s/%s: %s holds %d bytes, not %d", namespace, SecretName, dataKey, len(s.Data[dataKey]), keySize)
	}
	return Key{secret: s.Data[dataKey]}, nil
}

func create(ctx context.Context, c client.Client, namespace string) (*corev1.Secret, error) {
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SecretName},
		Type:       corev1.SecretTypeOpaque, Data: map[string][]byte{dataKey: k}, Immutable: ptr.To(true),
	}
	err := c.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		s = &corev1.Secret{}
		err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SecretName}, s)
	}
	return s, err
}

// Loader loads the key once and keeps it; a failed load is retried at
// the next call.
type Loader struct {
	// Client reads (and at first start creates) the Secret, uncached.
	Client    client.Client
	Namespace string

	mu  sync.Mutex
	key *Key
}

// Key returns the key.
func (l *Loader) Key(ctx context.Context) (Key, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.key != nil {
		return *l.key, nil
	}
	k, err := Ensure(ctx, l.Client, l.Namespace)
	if err != nil {
		return Key{}, err
	}
	l.key = &k
	return k, nil
}

// actionSealed is what an action's seal covers.
type actionSealed struct {
	Kind, Namespace, Order, Action, App, Comment, Actor string
	ActorGroups                                         []string
	AdmittedAt                                          string
}

// orderSealed is what an order's seal covers: the whole spec but the seal.
type orderSealed struct {
	Kind, Namespace string
	Spec            cafev1alpha1.ReleaseOrderSpec
}

// Action seals a stamped action of namespace ns.
func (k Key) Action(ns string, s cafev1alpha1.ReleaseActionSpec) string {
	at := ""
	if s.AdmittedAt != nil {
		at = s.AdmittedAt.UTC().Format(time.RFC3339Nano)
	}
	return k.mac(actionSealed{Kind: "ReleaseAction", Namespace: ns, Order: s.Order, Action: string(s.Action), App: s.App, Comment: s.Comment,
		Actor: s.Actor, ActorGroups: s.ActorGroups, AdmittedAt: at})
}

// Order seals a stamped order spec of namespace ns.
func (k Key) Order(ns string, s cafev1alpha1.ReleaseOrderSpec) string {
	s.Seal = ""
	return k.mac(orderSealed{Kind: "ReleaseOrder", Namespace: ns, Spec: s})
}

// ErrUnsealed says what a missing or wrong seal means, for the record.
var ErrUnsealed = errors.New("not sealed by CAFE's admission webhook (the webhooks are not installed, or were bypassed): the identity it names was not authenticated by CAFE")

// VerifyAction returns nil when the action's seal is CAFE's.
func (k Key) VerifyAction(ns string, s cafev1alpha1.ReleaseActionSpec) error {
	return k.verify(s.Seal, k.Action(ns, s))
}

// VerifyOrder returns nil when the order's seal is CAFE's.
func (k Key) VerifyOrder(ns string, s cafev1alpha1.ReleaseOrderSpec) error {
	return k.verify(s.Seal, k.Order(ns, s))
}

func (k Key) verify(got, want string) error {
	if len(k.secret) == 0 || got == "" || !hmac.Equal([]byte(got), []byte(want)) {
		return ErrUnsealed
	}
	return nil
}

func (k Key) mac(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		// The sealed structs always marshal.
		panic(fmt.Sprintf("seal: marshalling %T: %v", v, err))
	}
	m := hmac.New(sha256.New, k.secret)
	m.Write(raw)
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// Clock hands out admission times that strictly increase within one
// process, at microsecond resolution (what an admittedAt holds), so two
// actions admitted in one microsecond are still ordered.
type Clock struct {
	// Now is the time of day; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	last time.Time
}

// Next returns the next admission time.
func (c *Clock) Next() metav1.MicroTime {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now().UTC().Truncate(time.Microsecond)
	if !t.After(c.last) {
		t = c.last.Add(time.Microsecond)
	}
	c.last = t
	return metav1.NewMicroTime(t)
}
