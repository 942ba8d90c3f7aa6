package certs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomically replaces path with data through a temporary file in the
// same directory and a rename, so a reader (controller-runtime's certificate
// watcher) sees the old content or the new, never a partial file. It leaves
// a file that already holds data untouched, so the watcher does not reload
// for nothing, and reports whether it wrote.
func writeFileAtomically(path string, data []byte, perm os.FileMode) (bool, error) {
	if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, data) {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	// Removing after a successful rename fails harmlessly.
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	return true, nil
}

// writeCertFiles writes the serving certificate and key into dir. The key
// goes first: the watcher reloads on either change and keeps its previous
// certificate while the pair on disk does not match, so the pair is picked up
// once both are in place.
func writeCertFiles(dir string, certPEM, keyPEM []byte) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("creating certificate directory %s: %w", dir, err)
	}
	wroteKey, err := writeFileAtomically(filepath.Join(dir, "tls.key"), keyPEM, 0o600)
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", filepath.Join(dir, "tls.key"), err)
	}
	wroteCert, err := writeFileAtomically(filepath.Join(dir, "tls.crt"), certPEM, 0o644)
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", filepath.Join(dir, "tls.crt"), err)
	}
	return wroteKey || wroteCert, nil
}
