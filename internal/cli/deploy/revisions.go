package deploy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
	"github.com/cafe-io/cafe/internal/revision"
)

// historyEntry is one entry of a CafeDeployment's revision history, decoded
// from the ControllerRevision the controller keeps.
type historyEntry struct {
	// Name is the ControllerRevision's name, <cafedeployment>-<hash>.
	Name string
	// Number is .revision: higher is more recently released.
	Number int64
	// Hash is the revision hash (the cafe.io/revision-hash label), the
	// value of status.currentRevision and status.updateRevision.
	Hash    string
	Created metav1.Time
	// Template is the pod template of the revision; nil when Err is set.
	Template *corev1.PodTemplateSpec
	// Classic is the classic units' artifact of the revision, when the
	// CafeDeployment has classic units.
	Classic *cafev1alpha1.ClassicArtifact
	// Err says why .data.raw could not be decoded.
	Err error
}

// listRevisions reads the revision history of cd, oldest first.
func listRevisions(ctx context.Context, c client.Client, cd *cafev1alpha1.CafeDeployment) ([]historyEntry, error) {
	list := &appsv1.ControllerRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(cd.Namespace), client.MatchingLabels{cafev1alpha1.DeploymentLabel: cd.Name}); err != nil {
		return nil, fmt.Errorf("listing the revision history of %s (ControllerRevisions labelled %s=%s): %w", ref(cd), cafev1alpha1.DeploymentLabel, cd.Name, err)
	}
	return revisionsOf(cd, list.Items), nil
}

// revisionsOf decodes the ControllerRevisions of cd, oldest first. A
// revision controlled by another object (say, an earlier CafeDeployment of
// the same name) is left out.
func revisionsOf(cd *cafev1alpha1.CafeDeployment, items []appsv1.ControllerRevision) []historyEntry {
	out := make([]historyEntry, 0, len(items))
	for i := range items {
		cr := &items[i]
		if owner := metav1.GetControllerOf(cr); owner != nil && cd.UID != "" && owner.UID != cd.UID {
			continue
		}
		r := historyEntry{Name: cr.Name, Number: cr.Revision, Hash: cr.Labels[cafev1alpha1.RevisionHashLabel], Created: cr.CreationTimestamp}
		if r.Hash == "" {
			r.Hash = strings.TrimPrefix(cr.Name, cd.Name+"-")
		}
		r.Template, r.Classic, r.Err = decodeRevision(cr)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b historyEntry) int {
		return cmp.Or(cmp.Compare(a.Number, b.Number), strings.Compare(a.Name, b.Name))
	})
	return out
}

// decodeRevision reads a revision's pod template and classic artifact
// (revision.DeploymentData).
func decodeRevision(cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, *cafev1alpha1.ClassicArtifact, error) {
	if len(cr.Data.Raw) == 0 {
		return nil, nil, errors.New(".data.raw is empty")
	}
	d := &revision.DeploymentData{}
	if err := json.Unmarshal(cr.Data.Raw, d); err != nil {
		return nil, nil, fmt.Errorf(".data.raw is not a pod template: %w", err)
	}
	return &d.PodTemplateSpec, d.ClassicArtifact, nil
}

// images lists the containers of a template as name=image.
func images(t *corev1.PodTemplateSpec) string {
	if t == nil {
		return "-"
	}
	parts := make([]string, 0, len(t.Spec.Containers))
	for _, c := range t.Spec.Containers {
		parts = append(parts, c.Name+"="+c.Image)
	}
	return table.OrDash(strings.Join(parts, ","))
}

// describe names a revision in messages: "revision 3 (5f6d7c8b9)".
func (r historyEntry) describe() string {
	return fmt.Sprintf("revision %d (%s)", r.Number, r.Hash)
}
