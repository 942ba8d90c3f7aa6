// Package artifact is how an app's package travels to a classic host: a
// reproducible gzip'd tar (Build), served read-only over HTTP by an
// artifact store (Store), downloaded and checked against the SHA-256 its
// revision records (Fetch), and unpacked into an instance's directory
// (Unpack) from which `cafe agent` starts it.
//
// Invariants:
//
//   - A package holds directories and regular files only, with relative
//     paths: Build refuses anything else in its source, and Unpack refuses
//     absolute paths, paths that climb out with "..", links and devices,
//     so unpacking never writes outside its destination.
//   - Nothing half-done is left under a final name: Build and Fetch write
//     a temporary file beside the target and rename it, Unpack extracts
//     into a temporary directory beside the destination and renames it.
//     A package whose SHA-256 differs from the one asked for is removed.
//   - Sizes are bounded by MaxPackageBytes, downloaded and unpacked.
//   - The store serves one directory's regular files and nothing else: no
//     listing, no writes, nothing outside it.
package artifact

// MaxPackageBytes bounds a package, both its download and the total size
// of the files it unpacks to, so that a wrong URL or a malicious archive
// cannot fill the host's disk.
const MaxPackageBytes = 512 << 20
