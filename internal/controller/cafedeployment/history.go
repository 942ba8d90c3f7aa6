package cafedeployment

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/revision"
)

// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;update;patch;delete

// recordRevision keeps the CafeDeployment's revision history as
// ControllerRevisions named <name>-<hash>, what `cafe deploy rollback`
// restores from. Releasing a revision again moves it to the top of the
// history (a higher .revision), as a Deployment does. Pruning the history
// keeps hash and outgoing, the revision the release of hash replaces.
func recordRevision(ctx context.Context, c client.Client, scheme *runtime.Scheme, cd *cafev1alpha1.CafeDeployment, hash, outgoing string) error {
	revs, err := history(ctx, c, cd)
	if err != nil {
		return err
	}
	var top int64
	var existing *appsv1.ControllerRevision
	for i := range revs {
		top = max(top, revs[i].Revision)
		if revs[i].Labels[cafev1alpha1.RevisionHashLabel] == hash {
			existing = &revs[i]
		}
	}
	if existing != nil {
		if existing.Revision == top {
			return nil
		}
		patch := client.MergeFrom(existing.DeepCopy())
		existing.Revision = top + 1
		return client.IgnoreNotFound(c.Patch(ctx, existing, patch))
	}
	data, err := json.Marshal(revision.DeploymentDataOf(cd))
	if err != nil {
		return err
	}
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cd.Namespace,
			Name:      cd.Name + "-" + hash,
			Labels:    map[string]string{cafev1alpha1.DeploymentLabel: cd.Name, cafev1alpha1.RevisionHashLabel: hash},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: top + 1,
	}
	if err := controllerutil.SetControllerReference(cd, rev, scheme); err != nil {
		return err
	}
	if err := c.Create(ctx, rev); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("recording revision %s: %w", rev.Name, err)
	}
	return pruneHistory(ctx, c, append(revs, *rev), int(ptr.Deref(cd.Spec.RevisionHistoryLimit, 10)), outgoing, hash)
}

func history(ctx context.Context, c client.Client, cd *cafev1alpha1.CafeDeployment) ([]appsv1.ControllerRevision, error) {
	list := &appsv1.ControllerRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(cd.Namespace), client.MatchingLabels{cafev1alpha1.DeploymentLabel: cd.Name}); err != nil {
		return nil, fmt.Errorf("listing revision history: %w", err)
	}
	return list.Items, nil
}

// pruneHistory deletes the oldest revisions beyond limit, never the current
// or the update revision.
func pruneHistory(ctx context.Context, c client.Client, revs []appsv1.ControllerRevision, limit int, keep ...string) error {
	sort.Slice(revs, func(i, j int) bool { return revs[i].Revision < revs[j].Revision })
	excess := len(revs) - limit
	for i := 0; i < len(revs) && excess > 0; i++ {
		hash := revs[i].Labels[cafev1alpha1.RevisionHashLabel]
		if hash == keep[0] || hash == keep[1] {
			continue
		}
		if err := c.Delete(ctx, &revs[i]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("pruning revision %s: %w", revs[i].Name, err)
		}
		excess--
	}
	return nil
}
