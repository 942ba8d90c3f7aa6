package appanswer

import (
	"encoding/json"
	"net/http"
	"time"
)

// Response headers every answer carries, so a client (or a test behind a
// gateway) can tell which instance and version answered.
const (
	PodHeader     = "X-Cafe-Pod"
	VersionHeader = "X-Cafe-Version"
)

// HealthPath answers "ok" whatever the behaviour: the process is up.
const HealthPath = "/healthz"

// Answer is the JSON body of an answer on any path but HealthPath.
type Answer struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Container string `json:"container"`
	Image     string `json:"image"`
	Version   string `json:"version"`
	// Error is set on the answers of a failing instance.
	Error string `json:"error,omitempty"`
}

// Instance is who answers: the fields of its Answer and how it behaves.
type Instance struct {
	// Pod is the instance's name (a pod's, or a classic instance's); it
	// is also the PodHeader.
	Pod, Namespace, Container, Image string
	// Version is reported in the Answer and the VersionHeader.
	Version   string
	Behaviour Behaviour
	// SlowLatency is how long a Slow instance waits before it answers;
	// zero means DefaultSlowLatency.
	SlowLatency time.Duration
}

// failure is the Error of a Failing instance's answers.
const failure = "emulated failure: the image tag ends in -fail"

// Handler is the application of in: HealthPath answers "ok" at once
// whatever the behaviour, any other path answers in's Answer as its
// behaviour says, waiting first if it is Slow.
func Handler(in Instance) http.Handler {
	slow := in.SlowLatency
	if slow == 0 {
		slow = DefaultSlowLatency
	}
	answer := Answer{Pod: in.Pod, Namespace: in.Namespace, Container: in.Container, Image: in.Image, Version: in.Version}
	status := http.StatusOK
	if in.Behaviour == Failing {
		status = http.StatusInternalServerError
		answer.Error = failure
	}
	body, _ := json.Marshal(answer) // strings only: cannot fail
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set(PodHeader, in.Pod)
		h.Set(VersionHeader, in.Version)
		if r.URL.Path == HealthPath {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
			return
		}
		if in.Behaviour == Slow && !wait(r, slow) {
			return // the client went away
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}

// wait waits d unless r's client goes away first; it says whether the
// wait ended.
func wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
