package cafeappservice

import (
	"sort"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// configHash tells configurations apart, to share ConfigMaps between
// revisions with the same config contents.
func configHash(c cafev1alpha1.AppConfig) string {
	return hashJSON(c)
}

func hashJSON(v any) string { return cafev1alpha1.HashJSON(v) }

// revisionDecision says which revision holds the app's current content.
type revisionDecision struct {
	// Existing is the revision that already holds the content; nil when a
	// new one must be recorded.
	Existing *cafev1alpha1.AppRevision
	// Number and Name of the revision to create (when Existing is nil).
	Number int64
	Name   string
	// ConfigMapName the new revision's pods read: the one of an existing
	// revision with the same config, else <app>-r<N>-config; "" for an
	// empty config.
	ConfigMapName string
}

// decideRevision finds the revision of revs holding hash, or names the next
// one. Numbers never go back: the next number is above both every existing
// revision and counter (the app's status.revisionCount), so a collected
// revision's number is never handed out again.
func decideRevision(app string, revs []cafev1alpha1.AppRevision, hash string, cfg cafev1alpha1.AppConfig, counter int64) revisionDecision {
	top := counter
	for i := range revs {
		if revs[i].Spec.Hash == hash {
			return revisionDecision{Existing: &revs[i]}
		}
		top = max(top, revs[i].Spec.Number)
	}
	d := revisionDecision{Number: top + 1, Name: cafev1alpha1.AppRevisionName(app, top+1)}
	if cfg.HasEmptyConfig() {
		return d
	}
	want := configHash(cfg)
	// The oldest revision with the same config owns the ConfigMap name.
	sorted := byNumber(revs)
	for _, r := range sorted {
		if r.Spec.ConfigMapName != "" && configHash(r.Spec.Config) == want {
			d.ConfigMapName = r.Spec.ConfigMapName
			return d
		}
	}
	d.ConfigMapName = cafev1alpha1.AppConfigMapName(app, d.Number)
	return d
}

// byNumber returns revs sorted by revision number, oldest first.
func byNumber(revs []cafev1alpha1.AppRevision) []*cafev1alpha1.AppRevision {
	out := make([]*cafev1alpha1.AppRevision, 0, len(revs))
	for i := range revs {
		out = append(out, &revs[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Number < out[j].Spec.Number })
	return out
}

// revisionsToDelete returns the revisions to garbage-collect so that at
// most limit remain: the oldest first, never one in keep (the published,
// the last successful and the latest revision) and never a held one (see
// [cafev1alpha1.HoldAnnotationPrefix]). Protected revisions count towards
// the limit, so fewer unprotected ones survive when many are protected.
func revisionsToDelete(revs []cafev1alpha1.AppRevision, limit int, keep ...string) []*cafev1alpha1.AppRevision {
	kept := map[string]bool{}
	for _, k := range keep {
		if k != "" {
			kept[k] = true
		}
	}
	excess := len(revs) - limit
	var out []*cafev1alpha1.AppRevision
	for _, r := range byNumber(revs) {
		if excess <= 0 {
			break
		}
		if kept[r.Name] || r.IsHeld() || !r.DeletionTimestamp.IsZero() {
			continue
		}
		out = append(out, r)
		excess--
	}
	return out
}
