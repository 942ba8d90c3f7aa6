package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ChecksumMismatchError is Fetch's error when the downloaded package is
// not the one the revision names: its SHA-256 differs.
type ChecksumMismatchError struct {
	URL  string
	Want string
	Got  string
}

func (e *ChecksumMismatchError) Error() string {
	return fmt.Sprintf("package %s: sha256 is %s, the revision says %s", e.URL, e.Got, e.Want)
}

// IsChecksumMismatch says whether err is, or wraps, a
// *ChecksumMismatchError: the store served other bytes than the revision
// records, which retrying will not change.
func IsChecksumMismatch(err error) bool {
	var e *ChecksumMismatchError
	return errors.As(err, &e)
}

// Fetch downloads the package at rawURL (http or https) with c (nil:
// http.DefaultClient) to outFile, and keeps it only if its SHA-256 is
// wantSHA256 (hex): otherwise it returns a *ChecksumMismatchError and
// leaves no file. outFile appears only complete and verified (written
// beside it, then renamed). A non-2xx answer or a body over
// MaxPackageBytes is an error.
func Fetch(ctx context.Context, c *http.Client, rawURL, wantSHA256, outFile string) error {
	want, err := parseSHA256(wantSHA256)
	if err != nil {
		return fmt.Errorf("package %s: %w", rawURL, err)
	}
	if err := checkScheme(rawURL); err != nil {
		return err
	}
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("package %s: %w", rawURL, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("downloading package: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("downloading package %s: %s", rawURL, resp.Status)
	}
	if resp.ContentLength > MaxPackageBytes {
		return fmt.Errorf("downloading package %s: %d bytes, more than the %d bytes a package may have", rawURL, resp.ContentLength, MaxPackageBytes)
	}
	err = writeAtomically(outFile, func(w io.Writer) error {
		return copyVerified(w, resp.Body, rawURL, want)
	})
	if err != nil {
		if IsChecksumMismatch(err) {
			return err // says everything already
		}
		return fmt.Errorf("downloading package %s to %s: %w", rawURL, outFile, err)
	}
	return nil
}

// checkScheme refuses URLs that are not http or https: a revision's URL
// must not make the agent read a local file or speak another protocol.
func checkScheme(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("package URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("package URL %q: scheme %q is not http or https", rawURL, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("package URL %q: no host", rawURL)
	}
	return nil
}

// parseSHA256 checks that s is a hex SHA-256 and returns it in lower case.
func parseSHA256(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("sha256 %q is not %d hex digits", s, 2*sha256.Size)
	}
	return strings.ToLower(s), nil
}

// copyVerified copies at most MaxPackageBytes of body to w and checks
// that what it copied hashes to want.
func copyVerified(w io.Writer, body io.Reader, rawURL, want string) error {
	h := sha256.New()
	// One byte over the bound tells a body that is too large from one
	// that is exactly at it.
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, MaxPackageBytes+1))
	if err != nil {
		return err
	}
	if n > MaxPackageBytes {
		return fmt.Errorf("more than the %d bytes a package may have", MaxPackageBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &ChecksumMismatchError{URL: rawURL, Want: want, Got: got}
	}
	return nil
}
