// Package kwokstages holds the kwok Stage files CAFE's local control plane
// runs with. They are shipped in the repository, not read from the module
// cache, because stock kwok lacks two kubelet behaviours CAFE relies on:
// readiness gates feeding the pod's Ready condition, and in-place container
// image restarts (see shared notes on the local control plane). The pv-* and
// pvc-* stages provision PersistentVolumes for the control plane's default
// StorageClass (controlplane.StorageClassName), so StatefulSets with
// volumeClaimTemplates run.
package kwokstages

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

//go:embed *.yaml
var files embed.FS

// Delays are simulated kubelet latencies: how long after a pod is scheduled
// kwok reports it started (scheduling, image pull, container start), and
// how long after an in-place image change it reports the container
// restarted. Zero means at once (the control plane is the only limit).
type Delays struct {
	PodStart       time.Duration
	InPlaceRestart time.Duration
}

// delayed names the stage each delay applies to.
func (d Delays) delayed() map[string]time.Duration {
	return map[string]time.Duration{"pod-start.yaml": d.PodStart, "pod-image-restart.yaml": d.InPlaceRestart}
}

// All returns every stage as one multi-document YAML stream, in file-name
// order so the generated kwok configuration is reproducible.
func All() (string, error) { return WithDelays(Delays{}) }

// WithDelays is All with the delays written into their stages (kwok's
// spec.delay, counted from when kwok sees the stage's selector match).
func WithDelays(delays Delays) (string, error) {
	names, err := fs.Glob(files, "*.yaml")
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	docs := make([]string, 0, len(names))
	for _, n := range names {
		data, err := files.ReadFile(n)
		if err != nil {
			return "", err
		}
		doc := strings.TrimSpace(string(data))
		if d := delays.delayed()[n]; d > 0 {
			if !strings.Contains(doc, "\nspec:\n") {
				return "", fmt.Errorf("stage %s has no spec to delay", n)
			}
			doc = strings.Replace(doc, "\nspec:\n", fmt.Sprintf("\nspec:\n  delay:\n    durationMilliseconds: %d\n", d.Milliseconds()), 1)
		}
		docs = append(docs, doc)
	}
	return strings.Join(docs, "\n---\n") + "\n", nil
}
