package podemu

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cafe-io/cafe/internal/appanswer"
)

// The emulated application's answers are appanswer's, shared with the
// demo app that runs as a real process on classic hosts; these names
// forward to it so that podemu's callers keep theirs.

// Response headers every emulated answer carries, so a client (or a test
// behind a gateway) can tell which pod and version answered.
const (
	PodHeader     = appanswer.PodHeader
	VersionHeader = appanswer.VersionHeader
)

// Answer is the JSON body of an emulated container's answer on any path
// but /healthz.
type Answer = appanswer.Answer

// appHandler is the emulated application of ep (appanswer.Handler, with
// the version and behaviour of ep's image): /healthz answers "ok" at once
// whatever the image, any other path answers Answer as the image's
// behaviour says, waiting slow first for a slow image. inFlight counts
// the requests being answered, so that a stopped container's drain can be
// observed.
func appHandler(ep Endpoint, slow time.Duration, inFlight *atomic.Int64) http.Handler {
	version, behaviour := ParseImage(ep.Image)
	app := appanswer.Handler(appanswer.Instance{
		Pod: ep.Pod, Namespace: ep.Namespace, Container: ep.Container, Image: ep.Image,
		Version: version, Behaviour: behaviour, SlowLatency: slow,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		app.ServeHTTP(w, r)
	})
}
