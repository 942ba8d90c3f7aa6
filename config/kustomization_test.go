package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// `kubectl apply -k config/default` installs only the CRDs the kustomization
// lists; the local control plane installs every file in crd/bases. Both must
// install the same API.
func TestTheCRDKustomizationListsEveryGeneratedCRD(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("crd", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel := filepath.Join("bases", filepath.Base(f))
		if !slices.Contains(k.Resources, rel) {
			t.Errorf("config/crd/kustomization.yaml does not list %s: kubectl apply -k config/default would not install it", rel)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join("crd", r)); err != nil {
			t.Errorf("config/crd/kustomization.yaml lists %s, which does not exist", r)
		}
	}
}
