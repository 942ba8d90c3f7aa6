// Package ownwrites lets a controller tell that its cache has not yet caught
// up with its own last write to an object.
//
// A reconcile that reads its object from the cache before the watch has
// delivered the status the previous reconcile wrote decides from a past
// state: a CafeDeployment that had just started group k+1 would, reading
// group k back, lower no partition but raise one (the release went back a
// group for a second, and pods drained for k+1 were reopened, then drained
// again). Comparing resourceVersions, which Kubernetes defines as ordered
// integers for one resource (k8s.io/apimachinery/pkg/util/resourceversion),
// detects that. The record is in memory on purpose: it only describes the
// running process's writes; after a restart there is none to wait for.
package ownwrites

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
)

// Tracker remembers, per object, the resourceVersion its last write
// produced. The zero value is ready to use and safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	written map[types.NamespacedName]string
}

// Wrote records that a write to key produced resourceVersion rv.
func (t *Tracker) Wrote(key types.NamespacedName, rv string) {
	if rv == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written == nil {
		t.written = map[types.NamespacedName]string{}
	}
	t.written[key] = rv
}

// Behind reports whether a cached copy of key at resourceVersion cached
// predates the last recorded write. Once the cache has caught up the record
// is dropped. Unparseable versions are never called behind: the caller then
// acts on the cache as it would without a tracker.
func (t *Tracker) Behind(key types.NamespacedName, cached string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	rv, ok := t.written[key]
	if !ok {
		return false
	}
	cmp, err := resourceversion.CompareResourceVersion(cached, rv)
	if err != nil || cmp >= 0 {
		delete(t.written, key)
		return false
	}
	return true
}

// Forget drops the record of key (the object was deleted).
func (t *Tracker) Forget(key types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.written, key)
}
