package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Where the keys live, in CAFE's namespace. Only the controller may read the
// Secret; auditors read the public key from the ConfigMap.
const (
	SigningKeySecret = "cafe-audit-signing-key"
	PublicKeyConfig  = "cafe-audit-public-key"
	seedKey          = "ed25519.seed"
	publicKeyKey     = "ed25519.pub"
)

// +kubebuilder:rbac:groups="",namespace=cafe-system,resources=secrets;configmaps,verbs=get;create

// EnsureSigner returns the controller's signer: the key in the Secret, or a
// new key stored there at first start. The public key is published in the
// ConfigMap. Two controllers starting at once agree on one key: the loser
// of the create race reads the winner's.
func EnsureSigner(ctx context.Context, c client.Client, namespace string) (Signer, error) {
	secret := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SigningKeySecret}, secret)
	if apierrors.IsNotFound(err) {
		secret, err = createKey(ctx, c, namespace)
	}
	if err != nil {
		return Signer{}, fmt.Errorf("reading the audit signing key %s/%s: %w", namespace, SigningKeySecret, err)
	}
	seed := secret.Data[seedKey]
	if len(seed) != ed25519.SeedSize {
		return Signer{}, fmt.Errorf("audit signing key %s/%s: %s holds %d bytes, not an ed25519 seed", namespace, SigningKeySecret, seedKey, len(seed))
	}
	key := ed25519.NewKeyFromSeed(seed)
	if err := publishPublicKey(ctx, c, namespace, key.Public().(ed25519.PublicKey)); err != nil {
		return Signer{}, err
	}
	return Signer{Key: key}, nil
}

func createKey(ctx context.Context, c client.Client, namespace string) (*corev1.Secret, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SigningKeySecret},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{seedKey: seed},
		Immutable:  ptrTrue(),
	}
	err := c.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		secret = &corev1.Secret{}
		err = c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SigningKeySecret}, secret)
	}
	return secret, err
}

func publishPublicKey(ctx context.Context, c client.Client, namespace string, pub ed25519.PublicKey) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: PublicKeyConfig},
		Data:       map[string]string{publicKeyKey: base64.StdEncoding.EncodeToString(pub)},
	}
	err := c.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		existing, readErr := PublicKey(ctx, c, namespace)
		if readErr != nil {
			return readErr
		}
		if !existing.Equal(pub) {
			return fmt.Errorf("the published audit public key %s/%s does not match the signing key: restore the key pair, or audits of older entries will fail", namespace, PublicKeyConfig)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("publishing the audit public key %s/%s: %w", namespace, PublicKeyConfig, err)
	}
	return nil
}

// PublicKey reads the published public key, for verification.
func PublicKey(ctx context.Context, c client.Reader, namespace string) (ed25519.PublicKey, error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: PublicKeyConfig}, cm); err != nil {
		return nil, fmt.Errorf("reading the audit public key %s/%s: %w", namespace, PublicKeyConfig, err)
	}
	pub, err := base64.StdEncoding.DecodeString(cm.Data[publicKeyKey])
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit public key %s/%s: %s is not a base64 ed25519 public key", namespace, PublicKeyConfig, publicKeyKey)
	}
	return ed25519.PublicKey(pub), nil
}

func ptrTrue() *bool { t := true; return &t }
