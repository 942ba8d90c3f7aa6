package deploy

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// setPause sets spec.strategy.pause. The merge patch carries only that
// field and no resourceVersion: the outcome does not depend on anything
// else in the object, and pausing twice is the same as once.
func (o *Options) setPause(ctx context.Context, name string, pause bool) error {
	c, cd, err := o.getCafeDeployment(ctx, name)
	if err != nil {
		return err
	}
	if cd.Spec.Strategy.Pause == pause {
		if pause {
			fmt.Fprintf(o.Out, "%s is already paused\n", ref(cd))
		} else {
			fmt.Fprintf(o.Out, "%s is not paused: nothing to resume\n", ref(cd))
		}
		return nil
	}
	before := cd.DeepCopy()
	patch := client.MergeFrom(before)
	cd.Spec.Strategy.Pause = pause
	if err := c.Patch(ctx, cd, patch); err != nil {
		return fmt.Errorf("setting spec.strategy.pause=%t on %s: %w", pause, ref(cd), err)
	}
	byKey := cafev1alpha1.ResumedByAnnotation
	if pause {
		fmt.Fprintf(o.Out, "paused %s: no new pod operation starts until `%s`\n", ref(cd), command("resume", cd))
		byKey = cafev1alpha1.PausedByAnnotation
	} else {
		fmt.Fprintf(o.Out, "resumed %s\n", ref(cd))
	}
	if by, ok := stampedBy(before, cd, byKey, cafev1alpha1.ActedAtAnnotation); ok {
		fmt.Fprintf(o.Out, "recorded by the server as %s by %s\n", pauseWord(pause), by)
	}
	return nil
}

func pauseWord(pause bool) string {
	if pause {
		return "paused"
	}
	return "resumed"
}
