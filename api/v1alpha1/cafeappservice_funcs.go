package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"
)

// Names CAFE puts on the objects of a CafeAppService.
const (
	// AppLabel marks the objects of an app (its AppRevisions, ConfigMaps,
	// CafeDeployment, Service and pods) with the app's name. The app's
	// Service and CafeDeployment select pods by it alone, so they select
	// the pods of every revision.
	AppLabel = "cafe.io/app"

	// AppRevisionLabel marks an app's pods (through the CafeDeployment's
	// template) with the AppRevision they run.
	AppRevisionLabel = "cafe.io/app-revision"

	// PublishedByAnnotation and PublishedAtAnnotation record on a
	// CafeAppService who last changed spec.publishedRevision, and when.
	// CAFE's admission webhook stamps them with the user the API server
	// authenticated; a client cannot write them.
	PublishedByAnnotation = "cafe.io/published-by"
	PublishedAtAnnotation = "cafe.io/published-at"

	// HoldAnnotationPrefix prefixes annotations that keep an AppRevision
	// from garbage collection, one per holder (for example
	// hold.cafe.io/releaseorder-<name> while a release order is open).
	HoldAnnotationPrefix = "hold.cafe.io/"

	// DefaultAppRevisionHistoryLimit is the CRD default of
	// spec.revisionHistoryLimit.
	DefaultAppRevisionHistoryLimit int32 = 20

	// DefaultConfigMountPath is the CRD default of spec.config.mountPath.
	DefaultConfigMountPath = "/etc/cafe/config"

	// ConfigVolumeName is the volume through which an app's pods mount
	// their revision's config files. The validating webhook refuses a
	// template that uses the name itself.
	ConfigVolumeName = "cafe-config"
)

// On a CafeAppService, [FastReleaseAnnotation] holds the name of a revision
// (set by `cafe app rollback --fast`): while that revision is the published
// one, CAFE releases it in a single group, within the water level.

// AppRevisionName is the name of revision number n of app.
func AppRevisionName(app string, n int64) string {
	return app + "-r" + strconv.FormatInt(n, 10)
}

// AppConfigMapName is the name of the ConfigMap first recorded for
// revision number n of app.
func AppConfigMapName(app string, n int64) string {
	return AppRevisionName(app, n) + "-config"
}

// ParseAppRevisionName returns the revision number of name if it names a
// revision of app (<app>-r<N>, N >= 1).
func ParseAppRevisionName(app, name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, app+"-r")
	if !ok || rest == "" || rest[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// ResolveAppRevisionName accepts a revision as a full name (<app>-r<N>), as
// r<N> or as N, and returns the full name.
func ResolveAppRevisionName(app, ref string) (string, error) {
	if _, ok := ParseAppRevisionName(app, ref); ok {
		return ref, nil
	}
	short := strings.TrimPrefix(ref, "r")
	if n, err := strconv.ParseInt(short, 10, 64); err == nil && n >= 1 && !strings.HasPrefix(short, "0") {
		return AppRevisionName(app, n), nil
	}
	return "", fmt.Errorf("%q is not a revision of app %s: use %s-r<N>, r<N> or <N>", ref, app, app)
}

// HasEmptyConfig reports whether the configuration holds nothing, in which
// case a revision gets no ConfigMap.
func (c AppConfig) HasEmptyConfig() bool {
	return len(c.Env) == 0 && len(c.Files) == 0
}

// IsHeld reports whether a holder (a release order) keeps the revision from
// garbage collection.
func (r *AppRevision) IsHeld() bool {
	for k := range r.Annotations {
		if strings.HasPrefix(k, HoldAnnotationPrefix) {
			return true
		}
	}
	return false
}

// Default sets the fields the API server would default, and nothing else;
// see [CafeDeployment.Default] for why it exists.
func (a *CafeAppService) Default() {
	s := &a.Spec
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr.To(DefaultAppRevisionHistoryLimit)
	}
	s.Service.Default()
	if s.Config.MountPath == "" && !s.Config.HasEmptyConfig() {
		s.Config.MountPath = DefaultConfigMountPath
	}
	w := &s.Workload
	if w.Replicas == nil {
		w.Replicas = ptr.To(DefaultReplicas)
	}
	if w.PodSetType == "" {
		w.PodSetType = DefaultPodSetType
	}
	if w.Endpoints == "" {
		w.Endpoints = AppEndpointsSelector
	}
	cd := CafeDeployment{Spec: CafeDeploymentSpec{Topology: w.Topology, Strategy: w.Strategy}}
	cd.Default()
	w.Topology, w.Strategy = cd.Spec.Topology, cd.Spec.Strategy
}

// Default sets the Service fields the API server would default.
func (s *AppServiceSpec) Default() {
	if s.Type == "" {
		s.Type = "ClusterIP"
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = "None"
	}
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = "TCP"
		}
	}
}
