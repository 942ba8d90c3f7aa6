package artifact

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// entry is a file or directory of a package's source.
type entry struct {
	name string // slash-separated, relative to the source directory
	path string // on disk
	info fs.FileInfo
}

// Build writes a gzip'd tar of every directory and regular file under
// srcDir to outFile and returns the hex SHA-256 of outFile. The archive
// is reproducible: the same tree gives the same bytes, whoever builds it
// when (sorted paths, zero mtimes, uid and gid 0, no user names); only
// the permission bits are kept. A symlink or any other special file in
// srcDir is an error naming it, as is an outFile inside srcDir.
func Build(srcDir, outFile string) (sha256hex string, err error) {
	if err := outsideSource(srcDir, outFile); err != nil {
		return "", err
	}
	entries, err := sourceEntries(srcDir)
	if err != nil {
		return "", err
	}
	err = writeAtomically(outFile, func(w io.Writer) error {
		h := sha256.New()
		if err := writeArchive(io.MultiWriter(w, h), entries); err != nil {
			return err
		}
		sha256hex = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("building package %s from %s: %w", outFile, srcDir, err)
	}
	return sha256hex, nil
}

// outsideSource refuses an outFile inside srcDir: the archive would
// contain its own previous version, and Build would not be reproducible.
func outsideSource(srcDir, outFile string) error {
	src, err := filepath.Abs(srcDir)
	if err != nil {
		return fmt.Errorf("package source %s: %w", srcDir, err)
	}
	out, err := filepath.Abs(outFile)
	if err != nil {
		return fmt.Errorf("package %s: %w", outFile, err)
	}
	if rel, err := filepath.Rel(src, out); err == nil && filepath.IsLocal(rel) {
		return fmt.Errorf("package %s is inside its source %s: write it elsewhere", outFile, srcDir)
	}
	return nil
}

// sourceEntries lists the directories and regular files under srcDir
// (not srcDir itself), sorted by name, and refuses anything else.
func sourceEntries(srcDir string) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(srcDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == srcDir {
			if !d.IsDir() {
				return fmt.Errorf("package source %s is not a directory", srcDir)
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			// A symlink could point anywhere on the builder's machine
			// and, unpacked, anywhere on the host's: packages have none.
			return fmt.Errorf("%s is a %s: a package holds only directories and regular files", path, kind(info.Mode()))
		}
		rel, err := filepath.Rel(srcDir, path)
		if err != nil {
			return err
		}
		entries = append(entries, entry{name: filepath.ToSlash(rel), path: path, info: info})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing package source %s: %w", srcDir, err)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return entries, nil
}

// kind names a file type for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file (" + m.Type().String() + ")"
}

// writeArchive writes entries to w as a gzip'd tar.
func writeArchive(w io.Writer, entries []entry) error {
	// A zero gzip header (no name, no mtime) keeps the bytes reproducible.
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// writeEntry writes the header of e and, for a file, its content.
func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Name:    e.name,
		Mode:    int64(e.info.Mode().Perm()),
		ModTime: time.Unix(0, 0),
	}
	if e.info.IsDir() {
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = e.info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Exactly the size in the header: a file that changed size since it
	// was listed fails here (or in the next WriteHeader) rather than
	// producing a corrupt archive.
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("reading %d bytes: %w", hdr.Size, err)
	}
	return nil
}

// writeAtomically writes path through write into a temporary file beside
// it, then renames that over path, so that path is either absent, its old
// content or its whole new content. The file is made 0644: packages are
// not secrets, and the store serves them.
func writeAtomically(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
