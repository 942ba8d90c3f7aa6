// Package token issues the short-lived credentials CAFE gives directory
// users: JSON Web Tokens (ES256) that the Kubernetes API server verifies
// itself, through its structured authentication configuration
// (--authentication-config, AuthenticationConfiguration v1), against the
// keys CAFE publishes (OpenID discovery and JWKS). A token names the
// directory user and the directory groups it had when issued, under the
// dir: prefix the API server adds; it lives for the issuer's lifetime (60 s
// by default), so a change in the directory reaches new requests within
// that bound (docs/iam.md).
package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// Audience is the aud of CAFE's Kubernetes credentials.
const Audience = "cafe"

// DefaultLifetime is how long a token is valid unless the issuer says.
const DefaultLifetime = 60 * time.Second

// Paths the issuer serves (OpenID Connect discovery and the key set).
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/openid/v1/jwks"
)

// Issuer signs tokens with one ECDSA P-256 key.
type Issuer struct {
	// URL is the issuer (iss), an https URL the API server reaches.
	URL string
	// Audience is the aud the API server expects.
	Audience string
	Key      *ecdsa.PrivateKey
	// Lifetime of a token; zero means DefaultLifetime.
	Lifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Claims are what a token says.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	Groups    []string `json:"groups"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
}

// Errors of Verify.
var (
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("the token's signature does not verify")
	ErrExpired   = errors.New("the token has expired")
	ErrClaims    = errors.New("the token is not for this issuer and audience")
)

func (i Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i Issuer) lifetime() time.Duration {
	if i.Lifetime > 0 {
		return i.Lifetime
	}
	return DefaultLifetime
}

// KeyID names the key: the RFC 7638 thumbprint of its public part, so a
// rotated key gets a new ID by itself.
func (i Issuer) KeyID() string {
	pub := i.Key.PublicKey
	canonical := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64(coord(pub.X)), b64(coord(pub.Y)))
	sum := sha256.Sum256([]byte(canonical))
	return b64(sum[:])
}

// Issue signs a token for the directory user and groups (their directory
// names; the API server adds the prefix).
func (i Issuer) Issue(user string, groups []string) (string, Claims, error) {
	now := i.now()
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", Claims{}, err
	}
	c := Claims{Issuer: i.URL, Subject: user, Audience: i.Audience, Groups: append([]string{}, groups...),
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(i.lifetime()).Unix(), ID: b64(jti)}
	header, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": i.KeyID()})
	if err != nil {
		return "", Claims{}, err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, err
	}
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, i.Key, sum[:])
	if err != nil {
		return "", Claims{}, fmt.Errorf("signing a token: %w", err)
	}
	return signed + "." + b64(append(coord(r), coord(s)...)), c, nil
}

// Verify checks a token this issuer signed, for its issuer and audience,
// not expired, and returns its claims.
func (i Issuer) Verify(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, ErrMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return Claims{}, ErrMalformed
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&i.Key.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return Claims{}, ErrSignature
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	if c.Issuer != i.URL || c.Audience != i.Audience {
		return Claims{}, ErrClaims
	}
	if !i.now().Before(time.Unix(c.Expiry, 0)) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// Handler serves the issuer's discovery document and key set, reading
// the issuer when asked (its URL may be known only once it serves).
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": i.URL, "jwks_uri": strings.TrimSuffix(i.URL, "/") + JWKSPath,
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		pub := i.Key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "x": b64(coord(pub.X)), "y": b64(coord(pub.Y)), "kid": i.KeyID(), "alg": "ES256", "use": "sig",
		}}})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// NewKey generates a signing key.
func NewKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// coord is a P-256 coordinate or signature half as 32 big-endian bytes.
func coord(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }
