package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/cli/table"
)

// confirmOptions are the flags of `cafe deploy confirm`.
type confirmOptions struct {
	*Options
	// Group is the group to confirm; nil means the one the release waits on.
	Group *int32
	// OverrideAnalysis overrides the group's traffic analysis instead,
	// giving Reason.
	OverrideAnalysis bool
	Reason           string
}

// confirmDecision is what confirm does with a CafeDeployment as read.
type confirmDecision struct {
	Group int32
	// Warning is printed but does not stop the confirmation.
	Warning string
	// AlreadyBy is set when the group is already confirmed (by this user):
	// nothing is written.
	AlreadyBy string
}

// decideConfirm picks the group to confirm. Without an explicit group it is
// status.release.currentGroup, and only while the release waits for a
// confirmation (or verifies the group with a traffic step, which a
// confirmation ends). An explicit group is taken as given; a warning says when the
// release is not waiting on it, because the controller acts only on a
// confirmation of the group it waits on.
func decideConfirm(cd *cafev1alpha1.CafeDeployment, explicit *int32) (confirmDecision, error) {
	rel := cd.Status.Release
	// A traffic step without a duration lasts until its group is confirmed.
	verifying := rel.Phase == cafev1alpha1.ReleasePhaseVerifying && rel.CurrentGroup != nil
	waiting := rel.CurrentGroup != nil && (rel.Phase == cafev1alpha1.ReleasePhaseWaitingForConfirm || verifying)
	var d confirmDecision
	switch {
	case explicit != nil && *explicit < 0:
		return d, fmt.Errorf("--group %d: a group index is 0 or more", *explicit)
	case explicit != nil:
		d.Group = *explicit
		if !waiting || *rel.CurrentGroup != d.Group {
			d.Warning = fmt.Sprintf("%s is not waiting for a confirmation of group %d (phase %s): the controller only acts on a confirmation of the group it waits on",
				ref(cd), d.Group, phaseLine(rel))
		}
	case !waiting:
		return d, fmt.Errorf("%s is not waiting for a confirmation (phase %s): nothing to confirm; see `%s`, or pass --group to confirm a group ahead",
			ref(cd), phaseLine(rel), command("status", cd))
	default:
		d.Group = *rel.CurrentGroup
	}
	for _, g := range rel.Groups {
		if g.Index == d.Group && g.ConfirmedBy != "" {
			d.AlreadyBy = g.ConfirmedBy
			return d, nil
		}
	}
	// Setting the annotation to the value it already has changes nothing, so
	// the webhook would stamp nothing: report the earlier confirmation.
	if cd.Annotations[cafev1alpha1.ConfirmGroupAnnotation] == strconv.Itoa(int(d.Group)) {
		by := cd.Annotations[cafev1alpha1.ConfirmedByAnnotation]
		if by == "" {
			return d, fmt.Errorf("%s already has %s=%d but no %s: CAFE's admission webhook did not record who confirmed, so the controller ignores it; check that the webhook is installed, remove the annotation (kubectl annotate cafedeployment %s %s- -n %s) and confirm again",
				ref(cd), cafev1alpha1.ConfirmGroupAnnotation, d.Group, cafev1alpha1.ConfirmedByAnnotation, cd.Name, cafev1alpha1.ConfirmGroupAnnotation, cd.Namespace)
		}
		d.AlreadyBy = by
	}
	return d, nil
}

func (o *confirmOptions) run(ctx context.Context, name string) error {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	var before, after *cafev1alpha1.CafeDeployment
	var d confirmDecision
	// Each attempt decides again from a fresh read: a conflict means the
	// release may have moved on.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cd := &cafev1alpha1.CafeDeployment{}
		if err := cafeDeploymentKind.Get(ctx, c, cd, ns, name); err != nil {
			return err
		}
		var err error
		if d, err = decideConfirm(cd, o.Group); err != nil || d.AlreadyBy != "" {
			after = cd
			return err
		}
		before = cd.DeepCopy()
		// The patch carries only the annotation, and resourceVersion as a
		// lock. No user name: the webhook stamps the authenticated one.
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.ConfirmGroupAnnotation, strconv.Itoa(int(d.Group)))
		if err := c.Patch(ctx, cd, patch); err != nil {
			return fmt.Errorf("confirming group %d of %s: %w", d.Group, ref(cd), err)
		}
		after = cd
		return nil
	})
	if err != nil {
		return withConflictHint(err)
	}
	if d.Warning != "" {
		fmt.Fprintln(o.ErrOut, "Warning: "+d.Warning)
	}
	if d.AlreadyBy != "" {
		fmt.Fprintf(o.Out, "group %d of %s is already confirmed by %s\n", d.Group, ref(after), d.AlreadyBy)
		return nil
	}
	fmt.Fprintf(o.Out, "confirmed group %d of %s (%s=%d)\n", d.Group, ref(after), cafev1alpha1.ConfirmGroupAnnotation, d.Group)
	if by, ok := stampedBy(before, after, cafev1alpha1.ConfirmedByAnnotation, cafev1alpha1.ConfirmedAtAnnotation); ok {
		fmt.Fprintf(o.Out, "recorded by the server as confirmed by %s at %s\n", by, table.OrDash(after.Annotations[cafev1alpha1.ConfirmedAtAnnotation]))
	} else {
		fmt.Fprintf(o.ErrOut, "Warning: the server recorded no %s: CAFE's admission webhook did not stamp who confirmed, and the controller ignores a confirmation without it; check that the webhook is installed\n",
			cafev1alpha1.ConfirmedByAnnotation)
	}
	return nil
}

// decideOverride picks the group whose analysis to override: the explicit
// one, or the current group while the release verifies it or failed on it.
func decideOverride(cd *cafev1alpha1.CafeDeployment, explicit *int32, reason string) (int32, error) {
	if strings.TrimSpace(reason) == "" {
		return 0, errors.New("--reason: Required value: say why the analysis is overridden; it is recorded with your name")
	}
	if explicit != nil {
		return *explicit, nil
	}
	rel := cd.Status.Release
	if rel.CurrentGroup == nil || (rel.Phase != cafev1alpha1.ReleasePhaseVerifying && rel.Phase != cafev1alpha1.ReleasePhaseFailed) {
		return 0, fmt.Errorf("%s is not verifying a traffic step (phase %s): no analysis to override; see `%s`", ref(cd), phaseLine(rel), command("status", cd))
	}
	return *rel.CurrentGroup, nil
}

// runOverride sets the override annotations; CAFE's webhook stamps who.
func (o *confirmOptions) runOverride(ctx context.Context, name string) error {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	var before, after *cafev1alpha1.CafeDeployment
	var group int32
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cd := &cafev1alpha1.CafeDeployment{}
		if err := cafeDeploymentKind.Get(ctx, c, cd, ns, name); err != nil {
			return err
		}
		var err error
		if group, err = decideOverride(cd, o.Group, o.Reason); err != nil {
			return err
		}
		before = cd.DeepCopy()
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.OverrideAnalysisGroupAnnotation, strconv.Itoa(int(group)))
		metav1.SetMetaDataAnnotation(&cd.ObjectMeta, cafev1alpha1.OverrideAnalysisReasonAnnotation, o.Reason)
		if err := c.Patch(ctx, cd, patch); err != nil {
			return fmt.Errorf("overriding the analysis of group %d of %s: %w", group, ref(cd), err)
		}
		after = cd
		return nil
	})
	if err != nil {
		return withConflictHint(err)
	}
	fmt.Fprintf(o.Out, "overrode the analysis of group %d of %s\n", group, ref(after))
	if by, ok := stampedBy(before, after, cafev1alpha1.AnalysisOverriddenByAnnotation, cafev1alpha1.AnalysisOverriddenAtAnnotation); ok {
		fmt.Fprintf(o.Out, "recorded by the server as overridden by %s at %s\n", by, table.OrDash(after.Annotations[cafev1alpha1.AnalysisOverriddenAtAnnotation]))
	} else {
		fmt.Fprintf(o.ErrOut, "Warning: the server recorded no %s: CAFE's admission webhook did not stamp who overrode, and the controller ignores an override without it; check that the webhook is installed\n",
			cafev1alpha1.AnalysisOverriddenByAnnotation)
	}
	return nil
}
