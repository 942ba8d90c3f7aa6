package kwokstages

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// stage is the part of a kwok Stage the delays touch.
type stage struct {
	Metadata struct{ Name string }
	Spec     struct {
		Delay *struct {
			DurationMilliseconds int64 `json:"durationMilliseconds"`
		} `json:"delay"`
	}
}

func stagesOf(t *testing.T, stream string) map[string]stage {
	t.Helper()
	out := map[string]stage{}
	for _, doc := range strings.Split(stream, "\n---\n") {
		var s stage
		if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatalf("stage does not parse: %v\n%s", err, doc)
		}
		out[s.Metadata.Name] = s
	}
	return out
}

func TestDelaysGoIntoTheirStagesOnly(t *testing.T) {
	stream, err := WithDelays(Delays{PodStart: 3 * time.Second, InPlaceRestart: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := All()
	if err != nil {
		t.Fatal(err)
	}
	delayOf := func(s stage) int64 {
		if s.Spec.Delay == nil {
			return 0
		}
		return s.Spec.Delay.DurationMilliseconds
	}
	original := stagesOf(t, plain)
	want := map[string]int64{"pod-start": 3000, "pod-image-restart": 1000}
	for name := range want {
		if d := delayOf(original[name]); d != 0 {
			t.Errorf("stage %s delayed by %d ms without delays asked", name, d)
		}
	}
	delayed := stagesOf(t, stream)
	if len(delayed) != len(original) {
		t.Fatalf("%d stages with delays, %d without", len(delayed), len(original))
	}
	for name, s := range delayed {
		w, ok := want[name]
		if !ok {
			w = delayOf(original[name]) // a stage's own delay (node heartbeats) stays
		}
		if got := delayOf(s); got != w {
			t.Errorf("stage %s: delay %d ms, want %d ms", name, got, w)
		}
	}
}
