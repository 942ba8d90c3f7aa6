package podemu

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"
)

// Response headers every emulated answer carries, so a client (or a test
// behind a gateway) can tell which pod and version answered.
const (
	PodHeader     = "X-Cafe-Pod"
	VersionHeader = "X-Cafe-Version"
)

// Answer is the JSON body of an emulated container's answer on any path
// but /healthz.
type Answer struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Container string `json:"container"`
	Image     string `json:"image"`
	Version   string `json:"version"`
	// Error is set on the answers of a failing image.
	Error string `json:"error,omitempty"`
}

// appHandler is the emulated application of ep: /healthz answers "ok" at
// once whatever the image (the process is up), any other path answers
// Answer as the image's behaviour says, waiting slow first for a slow
// image. inFlight counts the requests being answered.
func appHandler(ep Endpoint, slow time.Duration, inFlight *atomic.Int64) http.Handler {
	version, behaviour := ParseImage(ep.Image)
	answer := Answer{Pod: ep.Pod, Namespace: ep.Namespace, Container: ep.Container, Image: ep.Image, Version: version}
	status := http.StatusOK
	if behaviour == Failing {
		status = http.StatusInternalServerError
		answer.Error = "emulated failure: the image tag ends in -fail"
	}
	body, _ := json.Marshal(answer) // strings only: cannot fail
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		h := w.Header()
		h.Set(PodHeader, ep.Pod)
		h.Set(VersionHeader, version)
		if r.URL.Path == "/healthz" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
			return
		}
		if behaviour == Slow {
			t := time.NewTimer(slow)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return // the client went away
			}
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}
