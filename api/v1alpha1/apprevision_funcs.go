package v1alpha1

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// appContent is what a revision snapshots of its app, in the order it is
// hashed.
type appContent struct {
	Template corev1.PodTemplateSpec `json:"template"`
	Service  AppServiceSpec         `json:"service"`
	Config   AppConfig              `json:"config"`
	// Classic is omitted when unset, so the hashes of apps without
	// classic units are what they were before classic units existed.
	Classic *ClassicArtifact `json:"classicArtifact,omitempty"`
}

// ContentHash is the revision hash of the app's template, service,
// config and classic artifact (call it on the app as stored, defaulted): the spec.hash of the
// revision that snapshots them. An edit back to an earlier content yields
// the earlier hash.
func (app *CafeAppService) ContentHash() string {
	return HashJSON(appContent{Template: app.Spec.Template, Service: app.Spec.Service, Config: app.Spec.Config, Classic: app.Spec.ClassicArtifact})
}

// VerifyContent reports why the revision is not what CAFE records, or nil:
// its name must be <spec.app>-r<spec.number> and spec.hash the hash of its
// template, service and config. Everything that runs a revision (the app
// controller, publish and order admission) checks it first, so a revision
// whose content was swapped under a real revision's hash never runs. (Who
// may create revisions at all is the admission webhook's check.)
func (r *AppRevision) VerifyContent() error {
	if n, ok := ParseAppRevisionName(r.Spec.App, r.Name); !ok || n != r.Spec.Number {
		return fmt.Errorf("AppRevision %s/%s: the name is not %s (spec.app and spec.number)", r.Namespace, r.Name, AppRevisionName(r.Spec.App, r.Spec.Number))
	}
	if got := r.ContentHash(); got != r.Spec.Hash {
		return fmt.Errorf("AppRevision %s/%s: spec.hash %s is not the hash of its template, service and config (%s): the revision was not recorded by CAFE", r.Namespace, r.Name, r.Spec.Hash, got)
	}
	return nil
}

// ContentHash is the hash of the revision's template, service and config:
// what spec.hash must be.
func (r *AppRevision) ContentHash() string {
	return HashJSON(appContent{Template: r.Spec.Template, Service: r.Spec.Service, Config: r.Spec.Config, Classic: r.Spec.ClassicArtifact})
}

// HashJSON is the short hash CAFE names contents by: FNV-64a of the JSON
// encoding, in the alphabet of object names.
func HashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %T cannot fail: %v", v, err))
	}
	h := fnv.New64a()
	h.Write(data)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum64()))
}
