package deploy

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmd returns `cafe deploy` and its verbs, reaching the cluster through
// kubectl's flags.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	return NewCmdWithOptions(NewOptions(streams))
}

// NewCmdWithOptions returns `cafe deploy` using o, so that tests can inject
// a client and read the streams.
func NewCmdWithOptions(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Follow and steer the release of a CafeDeployment: status, confirm, pause, resume, rollback, history",
		Long: `Follow and steer the release of a CafeDeployment in the namespace of the
kubectl flags. A release moves pods to a new revision group by group; with
spec.strategy.needWaitingForConfirm it waits after each group until a person
confirms. Who confirmed, paused, resumed or rolled back is recorded by CAFE
from the user the API server authenticated, never from what the CLI sends.`,
		Example: `  # where the release of web stands
  cafe deploy status web -n shop

  # let the release go on after the group it waits on
  cafe deploy confirm web -n shop

  # go back to the previous revision
  cafe deploy rollback web -n shop`,
	}
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newStatusCmd(o),
		newConfirmCmd(o),
		newPauseCmd(o, true),
		newPauseCmd(o, false),
		newRollbackCmd(o),
		newHistoryCmd(o),
	)
	return cmd
}

func newStatusCmd(o *Options) *cobra.Command {
	so := &statusOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show the release of a CafeDeployment: revisions, phase, groups, units and conditions",
		Example: `  cafe deploy status web

  # the whole object
  cafe deploy status web -o yaml`,
		Args:              nameArg,
		ValidArgsFunction: o.CompleteNames(cafeDeploymentKind),
		PreRunE:           func(*cobra.Command, []string) error { return so.validate() },
		RunE: func(cmd *cobra.Command, args []string) error {
			return so.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().StringVarP(&so.Output, "output", "o", "", fmt.Sprintf("print the object instead of the report; one of: %v", outputFormats()))
	cmd.Flags().BoolVar(&so.ShowManagedFields, "show-managed-fields", false, "keep metadata.managedFields with -o json|yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newConfirmCmd(o *Options) *cobra.Command {
	co := &confirmOptions{Options: o}
	var group int32
	cmd := &cobra.Command{
		Use:   "confirm NAME",
		Short: "Confirm the group a release waits on, so that the next group starts",
		Long: `Confirm the group a release waits on, so that the next group starts.

Without --group, confirms status.release.currentGroup, and only while the
release is WaitingForConfirm. It sets the annotation cafe.io/confirm-group;
CAFE's admission webhook records the authenticated user as
cafe.io/confirmed-by, which the controller copies into the group's record.`,
		Example: `  cafe deploy confirm web

  # confirm group 2 explicitly
  cafe deploy confirm web --group 2

  # let a traffic step pass whatever its analysis says (recorded with you and the reason)
  cafe deploy confirm web --override-analysis --reason "latency alert is a known false positive, INC-4711"`,
		Args:              nameArg,
		ValidArgsFunction: o.CompleteNames(cafeDeploymentKind),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("group") {
				co.Group = &group
			}
			if co.OverrideAnalysis {
				return co.runOverride(cmd.Context(), args[0])
			}
			return co.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().Int32Var(&group, "group", 0, "index of the group to confirm (default: the group the release waits on)")
	cmd.Flags().BoolVar(&co.OverrideAnalysis, "override-analysis", false, "override the traffic step's analysis of the group instead: the step counts as passed whatever the analysis says (needs --reason; recorded with the authenticated user)")
	cmd.Flags().StringVar(&co.Reason, "reason", "", "why the analysis is overridden (with --override-analysis)")
	_ = cmd.RegisterFlagCompletionFunc("group", cobra.NoFileCompletions)
	return cmd
}

func newPauseCmd(o *Options, pause bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "pause NAME",
		Short:             "Hold the release before its next pod operation (spec.strategy.pause=true)",
		Example:           "  cafe deploy pause web",
		Args:              nameArg,
		ValidArgsFunction: o.CompleteNames(cafeDeploymentKind),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.setPause(cmd.Context(), args[0], pause)
		},
	}
	if !pause {
		cmd.Use = "resume NAME"
		cmd.Short = "Let a paused release go on (spec.strategy.pause=false)"
		cmd.Example = "  cafe deploy resume web"
	}
	return cmd
}

func newRollbackCmd(o *Options) *cobra.Command {
	ro := &rollbackOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Restore spec.template from the revision history and release it",
		Long: `Restore spec.template from the CafeDeployment's revision history, which the
controller keeps as ControllerRevisions. By default the target is the most
recently released revision other than the update revision. The controller
then releases it like any other template, group by group; with --fast it
releases it in one group, without waiting for confirmation, still within the
water level (spec.strategy.minAvailable).`,
		Example: `  # back to the previous revision
  cafe deploy rollback web

  # back to revision 3 (a number or a hash, see: cafe deploy history web)
  cafe deploy rollback web --to-revision 3

  # in one group
  cafe deploy rollback web --fast`,
		Args:              nameArg,
		ValidArgsFunction: o.CompleteNames(cafeDeploymentKind),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ro.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().StringVar(&ro.ToRevision, "to-revision", "", "revision number or hash to restore (default: the previous revision)")
	cmd.Flags().BoolVar(&ro.Fast, "fast", false, "release the restored revision in one group (annotation cafe.io/fast-release)")
	_ = cmd.RegisterFlagCompletionFunc("to-revision", cobra.NoFileCompletions)
	return cmd
}

func newHistoryCmd(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:               "history NAME",
		Short:             "List the revisions of a CafeDeployment, marking the current and the update revision",
		Example:           "  cafe deploy history web",
		Args:              nameArg,
		ValidArgsFunction: o.CompleteNames(cafeDeploymentKind),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.history(cmd.Context(), args[0])
		},
	}
}

// nameArg requires the name of one CafeDeployment.
func nameArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes the name of one CafeDeployment, got %d arguments (see --help)", cmd.CommandPath(), len(args))
	}
	return nil
}
