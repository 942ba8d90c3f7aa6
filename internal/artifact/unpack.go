package artifact

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Unpack extracts the gzip'd tar archive into destDir, which must not
// exist yet; it is created 0755. Entries keep their permission bits
// (masked to 0777: no setuid, setgid or sticky bit); only directories and
// regular files are allowed, with relative paths that stay inside
// destDir, and at most MaxPackageBytes in all. Anything else fails the
// whole unpack with an error naming the entry, and leaves nothing behind:
// the archive is extracted into a temporary directory beside destDir,
// renamed to destDir only once complete.
func Unpack(archive, destDir string) (err error) {
	if _, err := os.Lstat(destDir); err == nil {
		return fmt.Errorf("unpacking %s: %s exists already", archive, destDir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	parent := filepath.Dir(destDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(destDir)+unpackingSuffix+"*")
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	defer func() {
		if err != nil {
			removeTree(tmp)
		}
	}()
	if err := extract(archive, tmp); err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	// The mode is explicit, whatever the umask: the instance's user must
	// be able to enter its directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	if err := os.Rename(tmp, destDir); err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}
	return nil
}

// unpackingSuffix follows the destination's name in the name of the
// temporary directory an unpack fills.
const unpackingSuffix = ".unpack-"

// UnpackingInto tells the temporary directory of an unpack, by its name,
// from anything else beside it: for one it returns the name of the
// directory being unpacked and true. A collector of unpacked directories
// must treat one as the directory it becomes (it may be in progress).
func UnpackingInto(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return "", false
	}
	dest, _, ok := strings.Cut(rest, unpackingSuffix)
	if !ok || dest == "" {
		return "", false
	}
	return dest, true
}

// extract writes the entries of archive under dir. Every write goes
// through an os.Root of dir, so that even an entry that got past the
// checks could not reach outside it.
func extract(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()

	x := extraction{root: root, dirModes: map[string]fs.FileMode{}}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	// Reading the gzip stream to its end checks its CRC: a corrupt
	// archive whose tar happens to parse is still refused.
	if _, err := io.Copy(io.Discard, io.LimitReader(zr, MaxPackageBytes)); err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	return x.applyDirModes()
}

// extraction is the state of one extract.
type extraction struct {
	root *os.Root
	// total is the bytes of the files written so far.
	total int64
	// dirModes are the modes of the directories, applied once all files
	// are written: a read-only directory must stay writable until then.
	dirModes map[string]fs.FileMode
}

// entry writes one entry of the archive.
func (x *extraction) entry(hdr *tar.Header, content io.Reader) error {
	name, err := localName(hdr.Name)
	if err != nil {
		return err
	}
	mode := fs.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if name == "." {
			return nil // destDir itself: always 0755
		}
		if err := x.root.MkdirAll(name, 0o755); err != nil {
			return err
		}
		x.dirModes[name] = mode
		return nil
	case tar.TypeReg:
		if name == "." {
			return errors.New("a file cannot be the package's root")
		}
		return x.file(name, mode, hdr.Size, content)
	case tar.TypeSymlink:
		return fmt.Errorf("a symlink (to %q): packages hold only directories and regular files", hdr.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("a hard link (to %q): packages hold only directories and regular files", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return errors.New("a device or named pipe: packages hold only directories and regular files")
	case tar.TypeXGlobalHeader:
		return nil // archive metadata (git archive writes one), no file
	}
	return fmt.Errorf("unsupported entry type %q: packages hold only directories and regular files", hdr.Typeflag)
}

// localName is the cleaned, OS-specific form of a tar entry's name,
// refused if it is absolute or climbs out of the destination.
func localName(name string) (string, error) {
	switch clean := path.Clean(name); {
	case strings.HasPrefix(name, "/"):
		return "", errors.New("an absolute path: entries must be relative to the package")
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", errors.New("the path leaves the package's directory")
	case !filepath.IsLocal(filepath.FromSlash(clean)):
		return "", errors.New("not a local path")
	default:
		return filepath.FromSlash(clean), nil
	}
}

// file writes a regular file of size bytes from content, with mode.
func (x *extraction) file(name string, mode fs.FileMode, size int64, content io.Reader) error {
	if x.total += size; x.total > MaxPackageBytes {
		return fmt.Errorf("the package unpacks to more than %d bytes", MaxPackageBytes)
	}
	if dir := filepath.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// O_EXCL: an archive naming a file twice is malformed; refuse it
	// rather than let the last copy silently win.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return errors.New("named twice in the archive")
	}
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, content, size); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %d bytes: %w", size, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Chmod rather than OpenFile's perm, which the umask would narrow:
	// an executable must stay executable.
	return x.root.Chmod(name, mode)
}

// applyDirModes gives the directories their archived modes, the deepest
// first, so that a directory without search permission does not keep
// its subdirectories from being changed.
func (x *extraction) applyDirModes() error {
	names := make([]string, 0, len(x.dirModes))
	for name := range x.dirModes {
		names = append(names, name)
	}
	slices.Sort(names)
	slices.Reverse(names) // a child sorts after its parent
	for _, name := range names {
		if err := x.root.Chmod(name, x.dirModes[name]); err != nil {
			return fmt.Errorf("directory %q: %w", name, err)
		}
	}
	return nil
}

// removeTree removes dir as the user who unpacked it, even when it holds
// directories without write permission.
func removeTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
