// Package version reports the build's version, stamped by the linker or read
// from the Go build information.
package version

import "runtime/debug"

// Version is set with -ldflags "-X github.com/cafe-io/cafe/internal/version.Version=…".
var Version = ""

// String returns the version, falling back to the VCS revision Go recorded.
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return info.Main.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}
