// Package config embeds the manifests that install CAFE (CRDs, RBAC and the
// namespace), so `cafe dev up` and the tests install exactly what
// `kubectl apply -k config/default` installs, without reading files at run
// time. The manager Deployment is not embedded: locally the manager runs
// in-process.
package config

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

//go:embed crd/bases/*.yaml rbac/service_account.yaml rbac/role.yaml rbac/role_binding.yaml rbac/release_roles.yaml rbac/aggregate_roles.yaml rbac/node_health_reporter_role.yaml rbac/metrics_reader_role.yaml rbac/manager_configmap_policy.yaml rbac/classic_host_agent.yaml manager/namespace.yaml webhook/webhooks.yaml gateway-api/gateway.networking.k8s.io_*.yaml
var manifests embed.FS

// CRDPaths is where the CRD manifests are, relative to the repository root
// (for envtest, which installs CRDs from files).
const CRDPaths = "config/crd/bases"

// GatewayAPICRDPaths is where the Gateway API CRDs (standard channel, the
// version go.mod pins; hack/update-gateway-api-crds.sh copies them) are,
// relative to the repository root. They are not CAFE's: a cluster with a
// gateway has them already; the local control plane installs them.
const GatewayAPICRDPaths = "config/gateway-api"

// GatewayAPICRDs returns the Gateway API CustomResourceDefinitions.
func GatewayAPICRDs() ([]*unstructured.Unstructured, error) {
	return decodeGlob("gateway-api/gateway.networking.k8s.io_*.yaml")
}

// CRDs returns CAFE's CustomResourceDefinitions.
func CRDs() ([]*unstructured.Unstructured, error) {
	return decodeGlob("crd/bases/*.yaml")
}

// InstallObjects returns, in apply order, the namespace, the CRDs and the RBAC
// of CAFE's controller manager.
func InstallObjects() ([]*unstructured.Unstructured, error) {
	var all []*unstructured.Unstructured
	for _, pattern := range []string{"manager/namespace.yaml", "crd/bases/*.yaml", "rbac/service_account.yaml", "rbac/role.yaml", "rbac/role_binding.yaml", "rbac/release_roles.yaml", "rbac/aggregate_roles.yaml", "rbac/node_health_reporter_role.yaml", "rbac/metrics_reader_role.yaml", "rbac/manager_configmap_policy.yaml", "rbac/classic_host_agent.yaml"} {
		objs, err := decodeGlob(pattern)
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// Webhooks returns the admission webhook configurations (service-based
// clientConfig; `cafe dev up` rewrites them to a URL).
func Webhooks() ([]*unstructured.Unstructured, error) {
	return decodeGlob("webhook/webhooks.yaml")
}

func decodeGlob(pattern string) ([]*unstructured.Unstructured, error) {
	names, err := fs.Glob(manifests, pattern)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no embedded manifest matches %s", pattern)
	}
	sort.Strings(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		data, err := manifests.ReadFile(name)
		if err != nil {
			return nil, err
		}
		decoded, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		objs = append(objs, decoded...)
	}
	return objs, nil
}

// Decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding manifest: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
}
