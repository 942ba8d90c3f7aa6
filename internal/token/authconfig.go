package token

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// AuthenticationConfig is the API server's structured authentication
// configuration (--authentication-config) that accepts this issuer's
// tokens: the issuer's URL, its CA, the audience; the user from sub and
// the groups from groups, both under the directory prefix (dir:, so a
// directory name never collides with Kubernetes' own: system:masters,
// service accounts); claims CAFE always sets
// required (CEL), so a token of another shape is refused.
func AuthenticationConfig(issuerURL, audience, caPEM string) ([]byte, error) {
	if !strings.HasPrefix(issuerURL, "https://") {
		return nil, fmt.Errorf("issuer %q: the API server accepts only https issuers", issuerURL)
	}
	cfg := map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "AuthenticationConfiguration",
		"jwt": []any{map[string]any{
			"issuer": map[string]any{
				"url":                  issuerURL,
				"audiences":            []string{audience},
				"certificateAuthority": caPEM,
			},
			"claimValidationRules": []any{
				map[string]any{"expression": "has(claims.jti) && claims.jti != ''", "message": "a CAFE token carries an ID"},
				map[string]any{"expression": "claims.exp - claims.iat <= 3600", "message": "a CAFE token lives at most an hour"},
			},
			"claimMappings": map[string]any{
				"username": map[string]any{"claim": "sub", "prefix": cafev1alpha1.DirectoryPrefix},
				"groups":   map[string]any{"claim": "groups", "prefix": cafev1alpha1.DirectoryPrefix},
				"uid":      map[string]any{"claim": "jti"},
			},
		}},
	}
	return yaml.Marshal(cfg)
}

// EmptyAuthenticationConfig trusts no issuer: what an API server starts
// with before CAFE serves its keys (it reloads the file when CAFE writes
// AuthenticationConfig into it).
func EmptyAuthenticationConfig() []byte {
	return []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt: []\n")
}

// WriteFileAtomic replaces path with data (0600) in one rename, so the API
// server never reads half a configuration.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".authentication-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
