package appanswer

import (
	"strings"
	"time"
)

// Behaviour is how an instance answers, chosen by its version's suffix.
type Behaviour string

const (
	// Healthy answers 200 at once.
	Healthy Behaviour = "Healthy"
	// Failing answers 500 on every path but /healthz (version ending in
	// -fail).
	Failing Behaviour = "Failing"
	// Slow answers after a delay (version ending in -slow).
	Slow Behaviour = "Slow"
)

// DefaultSlowLatency is how long a Slow instance waits before it answers
// unless told otherwise.
const DefaultSlowLatency = 250 * time.Millisecond

// BehaviourOf is the behaviour of an instance of version: -fail fails,
// -slow is slow, anything else is healthy.
func BehaviourOf(version string) Behaviour {
	switch {
	case strings.HasSuffix(version, "-fail"):
		return Failing
	case strings.HasSuffix(version, "-slow"):
		return Slow
	}
	return Healthy
}

// ParseImage returns the version a container of image reports and how it
// behaves. The version is the image's tag; without a tag it is the
// digest, and without either "latest" (what a runtime would pull). Only a
// tag chooses the behaviour (BehaviourOf): a digest or "latest" is
// healthy.
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
		return tag, BehaviourOf(tag)
	case digest != "":
		return digest, Healthy
	}
	return "latest", Healthy
}
