// Package ownedwrite writes the objects a CAFE controller owns whole (the
// pod sets of a CafeDeployment, the CafeDeployment of an app): created as
// desired, then changed by one JSON patch that replaces their spec.
//
// Not server-side apply: applying a pod template makes the API server merge
// it into the stored one, and on a custom resource that merge turns a field
// the previous apply filled and this one leaves empty ("resources": {}) into
// null, which the schema then refuses (kubernetes/kubernetes#103011, #117447,
// #135841). A rollback from a template with resources to one without could
// then never be written. Replacing the spec makes the stored template equal
// the desired one, whatever the two revisions differ in.
package ownedwrite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options says who writes and how.
type Options struct {
	// Owner is the field manager of the write.
	Owner client.FieldOwner
	// Drop names annotations removed unless desired sets them.
	Drop []string
	// Locked makes the write fail with a Conflict when the object changed
	// since existing was read. Needed where others write fields of the
	// spec too (a pause an order or a person set on a CafeDeployment): a
	// spec rendered from a stale read would otherwise put back what they
	// changed. Kept off where CAFE alone writes the spec, so that status
	// writes by the object's own controller cost no retries.
	Locked bool
}

// Write creates desired when existing is nil. Otherwise it replaces
// existing's spec with desired's, sets desired's labels and annotations
// (others' keys stay) and removes the annotations named in opts.Drop, in
// one JSON patch that fails if existing was deleted and recreated
// meanwhile (or, when opts.Locked, changed in any way).
func Write(ctx context.Context, c client.Client, desired, existing client.Object, opts Options) error {
	kind := desired.GetObjectKind().GroupVersionKind().Kind
	if existing == nil {
		if err := c.Create(ctx, desired, opts.Owner); err != nil {
			return fmt.Errorf("creating %s %s: %w", kind, desired.GetName(), err)
		}
		return nil
	}
	patch, err := replacePatch(desired, existing, opts)
	if err != nil {
		return fmt.Errorf("building the patch of %s %s: %w", kind, desired.GetName(), err)
	}
	// Patch decodes the answer into its object: never into the cache's.
	target := existing.DeepCopyObject().(client.Object)
	if err := c.Patch(ctx, target, client.RawPatch(types.JSONPatchType, patch), opts.Owner); err != nil {
		return fmt.Errorf("writing %s %s: %w", kind, desired.GetName(), err)
	}
	return nil
}

type jsonOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// replacePatch is the JSON patch that turns existing into desired: a UID
// test, the whole spec, and the metadata keys desired sets or drop names.
func replacePatch(desired, existing client.Object, opts Options) ([]byte, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return nil, err
	}
	ops := []jsonOp{{Op: "test", Path: "/metadata/uid", Value: string(existing.GetUID())}}
	if opts.Locked {
		// The API server refuses, as a Conflict, a patched object whose
		// resourceVersion is not the stored one.
		ops = append(ops, jsonOp{Op: "replace", Path: "/metadata/resourceVersion", Value: existing.GetResourceVersion()})
	}
	ops = append(ops, metadataOps("labels", desired.GetLabels(), existing.GetLabels(), nil)...)
	ops = append(ops, metadataOps("annotations", desired.GetAnnotations(), existing.GetAnnotations(), opts.Drop)...)
	if spec, ok := u["spec"]; ok {
		ops = append(ops, jsonOp{Op: "replace", Path: "/spec", Value: spec})
	}
	return json.Marshal(ops)
}

// metadataOps sets want's keys in the map field (labels or annotations)
// and removes the keys of drop that have is.
func metadataOps(field string, want, is map[string]string, drop []string) []jsonOp {
	var ops []jsonOp
	if len(is) == 0 {
		if len(want) > 0 {
			ops = append(ops, jsonOp{Op: "add", Path: "/metadata/" + field, Value: want})
		}
		return ops
	}
	for k, v := range want {
		if cur, ok := is[k]; !ok || cur != v {
			ops = append(ops, jsonOp{Op: "add", Path: "/metadata/" + field + "/" + escape(k), Value: v})
		}
	}
	for _, k := range drop {
		if _, ok := is[k]; ok {
			if _, wanted := want[k]; !wanted {
				ops = append(ops, jsonOp{Op: "remove", Path: "/metadata/" + field + "/" + escape(k)})
			}
		}
	}
	return ops
}

// escape makes a map key one JSON pointer token (RFC 6901).
func escape(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
