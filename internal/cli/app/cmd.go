package app

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// NewCmd returns `cafe app` and its verbs, reaching the cluster through
// kubectl's flags.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	return NewCmdWithOptions(NewOptions(streams))
}

// NewCmdWithOptions returns `cafe app` using o, so that tests can inject a
// client and read the streams.
func NewCmdWithOptions(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Apps and their revisions: list, get, revisions, diff, set image, publish, rollback",
		Long: `Work with CafeAppServices in the namespace of the kubectl flags. CAFE records
an immutable AppRevision (<app>-r<N>) for every new content of an app's
template, service and config; nothing runs until a revision is published.
Publishing releases the revision through the app's CafeDeployment, group by
group; a rollback publishes an earlier revision that released successfully.
Who published is recorded by CAFE from the user the API server
authenticated, never from what the CLI sends.`,
		Example: `  cafe app list -n shop
  cafe app revisions pay -n shop
  cafe app diff pay r2 r3 -n shop
  cafe app set image pay app=registry.example.com/pay:v3 -n shop
  cafe app diff pay -n shop
  cafe app publish pay --revision r3 -n shop
  cafe app rollback pay --fast -n shop`,
	}
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newListCmd(o), newGetCmd(o), newRevisionsCmd(o), newDiffCmd(o), newSetCmd(o), newPublishCmd(o), newRollbackCmd(o))
	return cmd
}

func newListCmd(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the apps of the namespace with their latest, published and last successful revisions",
		Example: "  cafe app list -n shop",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return o.list(cmd.Context()) },
	}
}

func newGetCmd(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get APP",
		Short: "Show an app: revisions, Service, release and conditions",
		Example: `  cafe app get pay

  # the whole object
  cafe app get pay -o yaml`,
		Args:              appArgs(1),
		ValidArgsFunction: o.CompleteNames(appKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.get(cmd.Context(), args[0], output) },
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "print the object instead of the report: yaml or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newRevisionsCmd(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:               "revisions APP",
		Short:             "List an app's revisions with their outcome, marking the latest, published and last successful one",
		Example:           "  cafe app revisions pay",
		Args:              appArgs(1),
		ValidArgsFunction: o.CompleteNames(appKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.revisions(cmd.Context(), args[0]) },
	}
}

func newDiffCmd(o *Options) *cobra.Command {
	var imagesOnly bool
	cmd := &cobra.Command{
		Use:   "diff APP [REVISION_A REVISION_B]",
		Short: "Show what changes from one revision to another, or from the published revision to the app's spec",
		Long: `Show what changes from REVISION_A to REVISION_B of APP, as a unified diff of
their snapshots: pod template and Service as YAML, each config env value and
each config file line by line. A revision is named <app>-r<N>, r<N> or N.
With two arguments, both full revision names, the app is taken from them.
With APP alone, compare the published revision with the app's spec as it is
now (what the next revision will hold), before publishing.

A summary line comes first: "only images differ" when the release can update
the pods in place, else "differs in more than images:" and every other field
that changes. With --images-only the command fails when anything but
images differs.`,
		Example: `  cafe app diff pay
  cafe app diff pay --images-only
  cafe app diff pay r2 r3
  cafe app diff pay-r2 pay-r3`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 3 {
				return fmt.Errorf("%s takes APP, APP REVISION_A REVISION_B, or two full revision names; got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		ValidArgsFunction: o.CompleteNames(appKind),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return o.diffSpec(cmd.Context(), args[0], imagesOnly)
			}
			app, a, b, err := diffArgs(args)
			if err != nil {
				return err
			}
			return o.diff(cmd.Context(), app, a, b, imagesOnly)
		},
	}
	cmd.Flags().BoolVar(&imagesOnly, "images-only", false, "fail (exit status 1) when anything but container images differs")
	return cmd
}

// diffArgs accepts APP A B, or two full revision names of one app.
func diffArgs(args []string) (app, a, b string, err error) {
	if len(args) == 3 {
		return args[0], args[1], args[2], nil
	}
	appOf := func(name string) string {
		i := strings.LastIndex(name, "-r")
		if i <= 0 {
			return ""
		}
		if _, ok := cafev1alpha1.ParseAppRevisionName(name[:i], name); !ok {
			return ""
		}
		return name[:i]
	}
	app = appOf(args[0])
	if app == "" || appOf(args[1]) != app {
		return "", "", "", fmt.Errorf("%q and %q are not two revisions of one app (<app>-r<N>); pass APP REVISION_A REVISION_B", args[0], args[1])
	}
	return app, args[0], args[1], nil
}

func newSetCmd(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change one thing of an app's template (image)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "image APP CONTAINER=IMAGE [CONTAINER=IMAGE...]",
		Short: "Change the images of named containers and nothing else",
		Long: `Set the image of each named container (or init container) of APP's template,
and nothing else: one JSON patch of those images, so ports, resources, probes
and every other field stay as they are. CAFE records the new content as a
revision; the command prints its name. Publish it to release it: a change of
container images only updates the pods in place (same pods, same IPs).

Do not change an image with a JSON merge patch of spec.template.spec.containers:
on a custom resource that replaces the whole list, so the containers lose
every field the patch does not repeat, and the release recreates every pod.`,
		Example: `  cafe app set image pay app=registry.example.com/pay:v3
  cafe app set image pay app=registry.example.com/pay:v3 migrate=registry.example.com/pay-migrate:v3
  cafe app diff pay --images-only && cafe app publish pay --revision r4`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("%s takes APP and at least one CONTAINER=IMAGE, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		ValidArgsFunction: o.CompleteNames(appKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.setImage(cmd.Context(), args[0], args[1:]) },
	})
	return cmd
}

func newPublishCmd(o *Options) *cobra.Command {
	var revision string
	var fast bool
	cmd := &cobra.Command{
		Use:   "publish APP --revision rN",
		Short: "Publish a revision: the app's CafeDeployment releases it with the app's strategy",
		Long: `Publish a revision of APP: set spec.publishedRevision, which makes the app's
CafeDeployment release it group by group with spec.workload.strategy
(beta, pause, confirmation, water level). The write is locked on what the
command read: if someone else publishes meanwhile, exactly one of you wins
and the other gets an error naming the winner. With --fast the release goes
in one group, without waiting for confirmation, still within the water
level (for an urgent fix).`,
		Example: `  cafe app publish pay --revision r3
  cafe app publish pay --revision pay-r3

  # an urgent fix, in one group
  cafe app publish pay --revision r4 --fast`,
		Args:              appArgs(1),
		ValidArgsFunction: o.CompleteNames(appKind),
		RunE: func(cmd *cobra.Command, args []string) error {
			if revision == "" {
				return fmt.Errorf("--revision is required (list the revisions with: cafe app revisions %s)", args[0])
			}
			return o.publishRevision(cmd.Context(), args[0], revision, fast)
		},
	}
	cmd.Flags().StringVar(&revision, "revision", "", "the revision to publish: <app>-r<N>, r<N> or N")
	cmd.Flags().BoolVar(&fast, "fast", false, "release in one group within the water level (annotation cafe.io/fast-release)")
	_ = cmd.RegisterFlagCompletionFunc("revision", cobra.NoFileCompletions)
	return cmd
}

func newRollbackCmd(o *Options) *cobra.Command {
	var to string
	var fast bool
	cmd := &cobra.Command{
		Use:   "rollback APP",
		Short: "Publish an earlier revision that released successfully",
		Long: `Roll APP back: publish the revision that most recently released
successfully other than the published one, or the one --to names (it must
have released successfully once). The pods get that revision's template and
its config contents back. By default the release goes group by group; with
--fast it goes in one group, without waiting for confirmation, still within
the water level (spec.workload.strategy.minAvailable).`,
		Example: `  cafe app rollback pay
  cafe app rollback pay --to r2 --fast`,
		Args:              appArgs(1),
		ValidArgsFunction: o.CompleteNames(appKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.rollback(cmd.Context(), args[0], to, fast) },
	}
	cmd.Flags().StringVar(&to, "to", "", "the revision to roll back to: <app>-r<N>, r<N> or N (default: the last successful one before the published)")
	cmd.Flags().BoolVar(&fast, "fast", false, "release in one group within the water level (annotation cafe.io/fast-release)")
	_ = cmd.RegisterFlagCompletionFunc("to", cobra.NoFileCompletions)
	return cmd
}

func appArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes the name of one CafeAppService, got %d arguments (see --help)", cmd.CommandPath(), len(args))
		}
		return nil
	}
}
