package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Where the keys live, in CAFE's namespace. Only the controller may read the
// Secret; auditors read the public keys from the ConfigMap (the bundle):
// the current key under ed25519.pub, every key CAFE signed with before
// under retired.<keyID>.pub, so that old trails stay verifiable.
const (
	SigningKeySecret = "cafe-audit-signing-key"
	PublicKeyConfig  = "cafe-audit-public-key"
	seedKey          = "ed25519.seed"
	currentKeyKey    = "ed25519.pub"
	retiredPrefix    = "retired."
	retiredSuffix    = ".pub"
)

// DefaultKeyRecheck is how often a running controller re-reads its signing
// key and the published keys: how soon a rotation takes effect and a
// replaced Secret stops signing.
const DefaultKeyRecheck = time.Minute

// ErrKeyNotPublished says the signing key Secret does not hold the key
// the bundle publishes as current: the Secret was replaced, deleted, or
// restored from another installation. CAFE does not adopt it: it stops
// signing until the key is restored or rotated (`cafe audit rotate-key`).
var ErrKeyNotPublished = errors.New("the audit signing key is not the published current key")

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// KeyRing is the public keys a verifier trusts, by ID.
type KeyRing map[string]ed25519.PublicKey

// NewKeyRing trusts the keys given.
func NewKeyRing(keys ...ed25519.PublicKey) KeyRing {
	r := KeyRing{}
	for _, k := range keys {
		r[KeyID(k)] = k
	}
	return r
}

// IDs are the ring's key IDs, sorted.
func (r KeyRing) IDs() []string {
	ids := make([]string, 0, len(r))
	for id := range r {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (r KeyRing) String() string { return "trusted: " + strings.Join(r.IDs(), ", ") }

// Bundle is the published public keys.
type Bundle struct {
	// Current signs new entries.
	Current ed25519.PublicKey
	// Retired signed entries before a rotation.
	Retired []ed25519.PublicKey
}

// Ring trusts every key of the bundle.
func (b Bundle) Ring() KeyRing {
	return NewKeyRing(append([]ed25519.PublicKey{b.Current}, b.Retired...)...)
}

// +kubebuilder:rbac:groups="",namespace=cafe-system,resources=secrets;configmaps,verbs=get;create

// EnsureSigner returns the controller's signer: the key in the Secret when
// it is the published current key. At first start (neither exists) it
// creates the key and publishes it; two controllers starting at once agree
// on one key: the loser of the create race reads the winner's. A Secret
// whose key is not the published current one — replaced, deleted and
// recreated, or missing while a key is published — is refused with
// ErrKeyNotPublished, never adopted.
func EnsureSigner(ctx context.Context, c client.Client, namespace string) (Signer, Bundle, error) {
	bundle, published, err := readBundle(ctx, c, namespace)
	if err != nil {
		return Signer{}, Bundle{}, err
	}
	secret := &corev1.Secret{}
	err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SigningKeySecret}, secret)
	switch {
	case apierrors.IsNotFound(err) && published:
		return Signer{}, Bundle{}, fmt.Errorf("%w: the Secret %s/%s is missing while key %s is published: restore the Secret from a backup, or rotate the key (cafe audit rotate-key)",
			ErrKeyNotPublished, namespace, SigningKeySecret, KeyID(bundle.Current))
	case apierrors.IsNotFound(err):
		secret, err = createKey(ctx, c, namespace)
	}
	if err != nil {
		return Signer{}, Bundle{}, fmt.Errorf("reading the audit signing key %s/%s: %w", namespace, SigningKeySecret, err)
	}
	key, err := keyOf(secret)
	if err != nil {
		return Signer{}, Bundle{}, err
	}
	s := Signer{Key: key}
	if !published {
		// First start, or a start that stopped between creating the key and
		// publishing it.
		pub := key.Public().(ed25519.PublicKey)
		return s, Bundle{Current: pub}, publishFirstKey(ctx, c, namespace, pub)
	}
	if current := KeyID(bundle.Current); current != s.ID() {
		return Signer{}, Bundle{}, fmt.Errorf("%w: the Secret %s/%s holds key %s, but %s/%s publishes %s as current (%s): the Secret was replaced; restore it, or rotate the key (cafe audit rotate-key)",
			ErrKeyNotPublished, namespace, SigningKeySecret, s.ID(), namespace, PublicKeyConfig, current, retiredNote(bundle, s.ID()))
	}
	return s, bundle, nil
}

func retiredNote(b Bundle, id string) string {
	if _, ok := b.Ring()[id]; ok {
		return "it is a retired key"
	}
	return "it was never published"
}

func keyOf(secret *corev1.Secret) (ed25519.PrivateKey, error) {
	seed := secret.Data[seedKey]
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key %s/%s: %s holds %d bytes, not an ed25519 seed", secret.Namespace, secret.Name, seedKey, len(seed))
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func newSeed() ([]byte, error) {
	seed := make([]byte, ed25519.SeedSize)
	_, err := rand.Read(seed)
	return seed, err
}

func keySecret(namespace string, seed []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SigningKeySecret},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{seedKey: seed},
		Immutable:  ptrTrue(),
	}
}

func createKey(ctx context.Context, c client.Client, namespace string) (*corev1.Secret, error) {
	seed, err := newSeed()
	if err != nil {
		return nil, err
	}
	secret := keySecret(namespace, seed)
	err = c.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		secret = &corev1.Secret{}
		err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SigningKeySecret}, secret)
	}
	return secret, err
}

// publishFirstKey creates the bundle with its first key; if another
// controller created it meanwhile, it must publish the same key.
func publishFirstKey(ctx context.Context, c client.Client, namespace string, pub ed25519.PublicKey) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: PublicKeyConfig},
		Data:       encodeBundle(Bundle{Current: pub}),
	}
	err := c.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		existing, _, readErr := readBundle(ctx, c, namespace)
		if readErr != nil {
			return readErr
		}
		if !existing.Current.Equal(pub) {
			return fmt.Errorf("%w: %s/%s publishes %s, the Secret holds %s", ErrKeyNotPublished, namespace, PublicKeyConfig, KeyID(existing.Current), KeyID(pub))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("publishing the audit public key %s/%s: %w", namespace, PublicKeyConfig, err)
	}
	return nil
}

func encodeBundle(b Bundle) map[string]string {
	data := map[string]string{currentKeyKey: base64.StdEncoding.EncodeToString(b.Current)}
	for _, k := range b.Retired {
		data[retiredPrefix+KeyID(k)+retiredSuffix] = base64.StdEncoding.EncodeToString(k)
	}
	return data
}

func decodeKey(text, where string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%s is not a base64 ed25519 public key", where)
	}
	return ed25519.PublicKey(raw), nil
}

// decodeBundle reads the ConfigMap's keys; a retired key must match the ID
// it is filed under.
func decodeBundle(cm *corev1.ConfigMap) (Bundle, error) {
	ref := cm.Namespace + "/" + cm.Name
	cur, err := decodeKey(cm.Data[currentKeyKey], "audit public key "+ref+": "+currentKeyKey)
	if err != nil {
		return Bundle{}, err
	}
	b := Bundle{Current: cur}
	names := make([]string, 0, len(cm.Data))
	for name := range cm.Data {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		id, ok := strings.CutPrefix(name, retiredPrefix)
		if !ok {
			continue
		}
		k, err := decodeKey(cm.Data[name], "audit public key "+ref+": "+name)
		if err != nil {
			return Bundle{}, err
		}
		if strings.TrimSuffix(id, retiredSuffix) != KeyID(k) {
			return Bundle{}, fmt.Errorf("audit public key %s: %s holds key %s, not the key its name says", ref, name, KeyID(k))
		}
		b.Retired = append(b.Retired, k)
	}
	return b, nil
}

// readBundle reads the published keys; published is false when the
// ConfigMap does not exist.
func readBundle(ctx context.Context, c client.Reader, namespace string) (Bundle, bool, error) {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: PublicKeyConfig}, cm)
	if apierrors.IsNotFound(err) {
		return Bundle{}, false, nil
	}
	if err != nil {
		return Bundle{}, false, fmt.Errorf("reading the audit public keys %s/%s: %w", namespace, PublicKeyConfig, err)
	}
	b, err := decodeBundle(cm)
	return b, true, err
}

// PublishedKeys reads the published bundle, for verification.
func PublishedKeys(ctx context.Context, c client.Reader, namespace string) (Bundle, error) {
	b, published, err := readBundle(ctx, c, namespace)
	if err == nil && !published {
		err = fmt.Errorf("reading the audit public keys %s/%s: not found", namespace, PublicKeyConfig)
	}
	return b, err
}

// Rotate replaces the signing key with a new one: it publishes the new
// public key as current, keeping every earlier key under retired.<ID>.pub
// so that old trails stay verifiable, then replaces the Secret. A running
// controller picks the new key up when it next checks its key
// (Reconciler.KeyRecheck). The bundle is written first and locked on its
// resourceVersion: a rotation that stops half way leaves a published key
// no controller signs with, which refuses signing loudly until Rotate is
// run again; it never leaves an unpublished key in use.
func Rotate(ctx context.Context, c client.Client, namespace string) (newID string, err error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: PublicKeyConfig}, cm); err != nil {
		return "", fmt.Errorf("reading the audit public keys %s/%s: %w", namespace, PublicKeyConfig, err)
	}
	old, err := decodeBundle(cm)
	if err != nil {
		return "", err
	}
	seed, err := newSeed()
	if err != nil {
		return "", err
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	cm.Data = encodeBundle(Bundle{Current: pub, Retired: append(old.Retired, old.Current)})
	if err := c.Update(ctx, cm); err != nil {
		return "", fmt.Errorf("publishing the new audit public key in %s/%s: %w", namespace, PublicKeyConfig, err)
	}
	// The Secret is immutable: replace it.
	old2 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SigningKeySecret}}
	if err := c.Delete(ctx, old2); client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("removing the old audit signing key %s/%s: %w", namespace, SigningKeySecret, err)
	}
	if err := c.Create(ctx, keySecret(namespace, seed)); err != nil {
		return "", fmt.Errorf("storing the new audit signing key %s/%s (run the rotation again): %w", namespace, SigningKeySecret, err)
	}
	return KeyID(pub), nil
}

func ptrTrue() *bool { t := true; return &t }
