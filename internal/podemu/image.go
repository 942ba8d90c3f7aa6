package podemu

import "github.com/cafe-io/cafe/internal/appanswer"

// Behaviour is how an emulated container answers, chosen by its image tag.
type Behaviour = appanswer.Behaviour

const (
	// Healthy answers 200 at once.
	Healthy = appanswer.Healthy
	// Failing answers 500 on every path but /healthz (tag ending in -fail).
	Failing = appanswer.Failing
	// Slow answers after Options.SlowLatency (tag ending in -slow).
	Slow = appanswer.Slow
)

// ParseImage returns the version an emulated container of image reports
// and how it behaves (appanswer.ParseImage): the version is the image's
// tag, else its digest, else "latest"; a tag ending in -fail fails, one
// ending in -slow is slow.
func ParseImage(image string) (version string, b Behaviour) {
	return appanswer.ParseImage(image)
}
