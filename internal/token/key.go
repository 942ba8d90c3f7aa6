package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SigningKeySecret holds the issuer's signing key (key.pem, PKCS #8) in
// CAFE's namespace; every replica of CAFE signs with it.
const SigningKeySecret = "cafe-token-signing-key"

const keyField = "key.pem"

// EnsureKey reads the signing key, creating it the first time (one writer
// wins a race; the others read its key).
func EnsureKey(ctx context.Context, c client.Client, namespace string) (*ecdsa.PrivateKey, error) {
	for range 2 {
		s := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: SigningKeySecret}, s)
		if err == nil {
			return parseKey(s)
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the token signing key %s/%s: %w", namespace, SigningKeySecret, err)
		}
		key, err := NewKey()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: SigningKeySecret, Labels: map[string]string{"app.kubernetes.io/name": "cafe"}},
			Type:       corev1.SecretTypeOpaque,
			Immutable:  ptr.To(true),
			Data:       map[string][]byte{keyField: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
		}
		err = c.Create(ctx, s)
		if err == nil {
			return key, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the token signing key %s/%s: %w", namespace, SigningKeySecret, err)
		}
	}
	return nil, errors.New("the token signing key was created and deleted meanwhile")
}

func parseKey(s *corev1.Secret) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(s.Data[keyField])
	if block == nil {
		return nil, fmt.Errorf("Secret %s/%s: %s is not PEM", s.Namespace, s.Name, keyField)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("Secret %s/%s: not an ECDSA key", s.Namespace, s.Name)
	}
	return key, nil
}
