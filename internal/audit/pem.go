package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// EncodeKeys writes a bundle as PEM "PUBLIC KEY" blocks (PKIX, readable by
// openssl), each after a comment line naming its ID and whether it is
// current or retired: the file an auditor pins (`cafe audit export-keys`).
func EncodeKeys(b Bundle) ([]byte, error) {
	var buf bytes.Buffer
	write := func(k ed25519.PublicKey, state string) error {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return fmt.Errorf("encoding audit key %s: %w", KeyID(k), err)
		}
		fmt.Fprintf(&buf, "# CAFE audit key %s (%s)\n", KeyID(k), state)
		return pem.Encode(&buf, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	if err := write(b.Current, "current"); err != nil {
		return nil, err
	}
	for _, k := range b.Retired {
		if err := write(k, "retired"); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// ParseKeys reads the keys to trust: PEM "PUBLIC KEY" blocks holding
// ed25519 keys (EncodeKeys), or one base64 raw key.
func ParseKeys(data []byte) ([]ed25519.PublicKey, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		k, err := decodeKey(string(data), "the key")
		if err != nil {
			return nil, err
		}
		return []ed25519.PublicKey{k}, nil
	}
	var keys []ed25519.PublicKey
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(keys)+1, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PEM block %d: not an ed25519 key", len(keys)+1)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PUBLIC KEY block")
	}
	return keys, nil
}
