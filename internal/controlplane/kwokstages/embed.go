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
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// All returns every stage as one multi-document YAML stream, in file-name
// order so the generated kwok configuration is reproducible.
func All() (string, error) {
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
		docs = append(docs, strings.TrimSpace(string(data)))
	}
	return strings.Join(docs, "\n---\n") + "\n", nil
}
