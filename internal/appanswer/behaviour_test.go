package appanswer

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestParseImage(t *testing.T) {
	for _, tc := range []struct {
		name, image, version string
		behaviour            Behaviour
	}{
		{"the tag is the version", "example.com/demo:v2", "v2", Healthy},
		{"an image without tag runs latest", "demo", "latest", Healthy},
		{"a registry port is not a tag", "localhost:5000/demo", "latest", Healthy},
		{"a tag after a registry port is", "localhost:5000/team/demo:1.4.0", "1.4.0", Healthy},
		{"a digest without tag is the version", "demo@sha256:0123abcd", "sha256:0123abcd", Healthy},
		{"a tag wins over a digest", "example.com/demo:v3@sha256:0123abcd", "v3", Healthy},
		{"a tag ending in -fail fails", "example.com/demo:v2-fail", "v2-fail", Failing},
		{"a tag ending in -slow is slow", "example.com/demo:v2-slow", "v2-slow", Slow},
		{"only the suffix counts", "example.com/demo:fail-v2", "fail-v2", Healthy},
		{"the tag is needed, not the name", "example.com/demo-fail", "latest", Healthy},
		{"a digest never chooses a behaviour", "demo-slow@sha256:0123abcd", "sha256:0123abcd", Healthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			version, behaviour := ParseImage(tc.image)
			g.Expect(version).To(Equal(tc.version))
			g.Expect(behaviour).To(Equal(tc.behaviour))
		})
	}
}

func TestBehaviourOf(t *testing.T) {
	for version, want := range map[string]Behaviour{
		"v1": Healthy, "v3-fail": Failing, "v2-slow": Slow, "fail-v2": Healthy, "": Healthy, "v1-fail-slow": Slow,
	} {
		if got := BehaviourOf(version); got != want {
			t.Errorf("BehaviourOf(%q) = %s, want %s", version, got, want)
		}
	}
}
