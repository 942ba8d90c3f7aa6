package podemu

import "strings"

// Behaviour is how an emulated container answers, chosen by its image tag.
type Behaviour string

const (
	// Healthy answers 200 at once.
	Healthy Behaviour = "Healthy"
	// Failing answers 500 on every path but /healthz (tag ending in -fail).
	Failing Behaviour = "Failing"
	// Slow answers after Options.SlowLatency (tag ending in -slow).
	Slow Behaviour = "Slow"
)

// ParseImage returns the version an emulated container of image reports
// and how it behaves. The version is the image's tag; without a tag it is
// the digest, and without either "latest" (what a runtime would pull). The
// behaviour comes from the tag's suffix: -fail fails, -slow is slow.
func ParseImage(image string) (version string, b Behaviour) {
	name, digest, _ := strings.Cut(image, "@")
	tag := ""
	// A colon before the last slash belongs to the registry's port
	// (localhost:5000/demo), not to a tag.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	switch {
	case tag != "":
		version = tag
	case digest != "":
		version = digest
	default:
		version = "latest"
	}
	switch {
	case strings.HasSuffix(tag, "-fail"):
		return version, Failing
	case strings.HasSuffix(tag, "-slow"):
		return version, Slow
	}
	return version, Healthy
}
