package deploy

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
	"github.com/cafe-io/cafe/internal/revision"
)

// rollbackOptions are the flags of `cafe deploy rollback`.
type rollbackOptions struct {
	*Options
	// ToRevision is a revision number or hash; "" means the previous one.
	ToRevision string
	// Fast releases the target in one group (cafe.io/fast-release).
	Fast bool
}

// rollbackTarget picks the revision to restore from revs (as returned by
// revisionsOf). Without to, it is the most recently released revision other
// than the update revision. to is a revision number, a hash or a
// ControllerRevision name. The update revision itself is refused: restoring
// it changes nothing.
func rollbackTarget(cd *cafev1alpha1.CafeDeployment, revs []historyEntry, to string) (historyEntry, error) {
	update := cd.Status.UpdateRevision
	seeHistory := fmt.Sprintf("see `%s`", command("history", cd))
	var target *historyEntry
	if to == "" {
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].Hash != update {
				target = &revs[i]
				break
			}
		}
		if target == nil {
			return historyEntry{}, fmt.Errorf("%s has no revision to roll back to: its history (%d revisions) holds no revision other than the update revision %s; %s",
				ref(cd), len(revs), table.OrDash(update), seeHistory)
		}
	} else {
		number, numErr := strconv.ParseInt(to, 10, 64)
		for i := range revs {
			if (numErr == nil && revs[i].Number == number) || revs[i].Hash == to || revs[i].Name == to {
				if target != nil && target.Name != revs[i].Name {
					return historyEntry{}, fmt.Errorf("--to-revision %s matches both %s and %s of %s; pass the hash", to, target.describe(), revs[i].describe(), ref(cd))
				}
				target = &revs[i]
			}
		}
		if target == nil {
			return historyEntry{}, fmt.Errorf("%s has no revision %q in its history (a revision number or hash); %s", ref(cd), to, seeHistory)
		}
	}
	if target.Hash == update {
		return historyEntry{}, fmt.Errorf("%s is already the update revision of %s: nothing to roll back to; pick another with --to-revision (%s)", target.describe(), ref(cd), seeHistory)
	}
	if target.Err != nil {
		return historyEntry{}, fmt.Errorf("%s of %s cannot be restored: ControllerRevision %s: %w", target.describe(), ref(cd), target.Name, target.Err)
	}
	return *target, nil
}

func (o *rollbackOptions) run(ctx context.Context, name string) error {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	var target historyEntry
	var cd *cafev1alpha1.CafeDeployment
	// Each attempt picks the target again from a fresh read: on a conflict
	// the template or the update revision may have changed.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cd = &cafev1alpha1.CafeDeployment{}
		if err := cafeDeploymentKind.Get(ctx, c, cd, ns, name); err != nil {
			return err
		}
		revs, err := listRevisions(ctx, c, cd)
		if err != nil {
			return err
		}
		if target, err = rollbackTarget(cd, revs, o.ToRevision); err != nil {
			return err
		}
		restored := cd.DeepCopy()
		restored.Spec.Template = *target.Template.DeepCopy()
		if restored.Spec.Classic != nil && target.Classic != nil {
			restored.Spec.Classic.Artifact = *target.Classic.DeepCopy()
		}
		if equality.Semantic.DeepEqual(restored.Spec, cd.Spec) {
			return fmt.Errorf("spec.template of %s already is %s (the controller has not recorded it as the update revision yet); nothing to roll back", ref(cd), target.describe())
		}
		// One patch, locked on resourceVersion: the template (and the
		// classic units' artifact), and the fast release request that is
		// about this revision only.
		patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
		cd.Spec.Template, cd.Spec.Classic = restored.Spec.Template, restored.Spec.Classic
		if o.Fast {
			metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, target.Hash)
		} else {
			// A fast-release request left by an earlier rollback must not make
			// this one fast.
			delete(cd.Annotations, cafev1alpha1.FastReleaseAnnotation)
		}
		if err := c.Patch(ctx, cd, patch); err != nil {
			return fmt.Errorf("restoring spec.template of %s from %s: %w", ref(cd), target.describe(), err)
		}
		return nil
	})
	if err != nil {
		return withConflictHint(err)
	}
	fmt.Fprintf(o.Out, "rolling back %s to %s\n", name, target.describe())
	if o.Fast {
		fmt.Fprintf(o.Out, "fast: the controller releases it in one group, without waiting for confirmation, within the water level\n")
		// The controller honours the annotation only while it equals the
		// hash it computes from spec.template.
		if h := revision.DeploymentHash(cd); h != target.Hash {
			fmt.Fprintf(o.ErrOut, "Warning: the restored template hashes to %s, not %s, so the controller will not apply %s; the rollback proceeds group by group\n",
				h, target.Hash, cafev1alpha1.FastReleaseAnnotation)
		}
	}
	if cd.Spec.Strategy.Pause {
		fmt.Fprintf(o.ErrOut, "Warning: %s is paused: the rollback starts after `%s`\n", ref(cd), command("resume", cd))
	}
	return nil
}
