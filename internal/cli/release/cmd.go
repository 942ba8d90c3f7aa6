package release

import (
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/install"
)

// NewCmd returns `cafe release`.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	return NewCmdWithOptions(NewOptions(streams))
}

// NewCmdWithOptions returns `cafe release` using o.
func NewCmdWithOptions(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Release orders (发布单): create, approve, start, pause, confirm, roll back, and their record",
		Long: `A release order releases revisions of one or more apps in dependency order,
after the approvals it asks for (never by its requester), within its change
window, with a failure policy, and keeps a signed audit trail of every step.
Every action (approve, reject, start, pause, resume, confirm, cancel,
rollback) is recorded with the user the API server authenticated; RBAC
decides who may take it (verbs of the same names on releaseorders).`,
		Example: `  cafe release create weekly --title "weekly release" --ticket CHG-1234 \
      --app user=r3 --app account=r7 --app gateway=r2 --app report=r5 \
      --depends-on account=user --depends-on gateway=account --approvals 2 -n shop
  cafe release approve weekly --comment "reviewed the diff" -n shop
  cafe release start weekly -n shop
  cafe release get weekly -n shop
  cafe release history weekly -n shop
  cafe release stats --since 720h -n shop`,
	}
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newCreateCmd(o), newGetCmd(o), newListCmd(o), newHistoryCmd(o), newStatsCmd(o))
	for _, a := range cafev1alpha1.ReleaseActionTypes {
		cmd.AddCommand(newActCmd(o, a))
	}
	return cmd
}

func newCreateCmd(o *Options) *cobra.Command {
	var c createOptions
	cmd := &cobra.Command{
		Use:   "create [NAME] (-f FILE | --title T --app APP=REV ...)",
		Short: "Create a release order (the requester is recorded by CAFE)",
		Example: `  cafe release create -f order.yaml
  cafe release create weekly --title "weekly" --app a=r2 --app b=r3 --depends-on b=a --approvals 2 \
      --window-start 2026-05-01T22:00:00+08:00 --window-end 2026-05-02T02:00:00+08:00 --failure-policy RollbackAll`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return o.create(cmd.Context(), name, c)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&c.File, "filename", "f", "", "a ReleaseOrder manifest (YAML or JSON)")
	f.StringVar(&c.Title, "title", "", "what the release is, in one line")
	f.StringVar(&c.Description, "description", "", "the change, for reviewers")
	f.StringVar(&c.Ticket, "ticket", "", "reference in the external change system")
	f.StringArrayVar(&c.Apps, "app", nil, "APP=REVISION (pay=r3, pay-r3 or pay=3), once per app")
	f.StringArrayVar(&c.DependsOn, "depends-on", nil, "APP=DEP[,DEP]: APP starts only after DEP succeeded")
	f.Int32Var(&c.Approvals, "approvals", 0, "distinct approvals required (default 1)")
	f.StringArrayVar(&c.ApproverGroups, "approver-group", nil, "only members of these groups may approve")
	f.StringVar(&c.WindowStart, "window-start", "", "RFC 3339 time the order may start releasing")
	f.StringVar(&c.WindowEnd, "window-end", "", "RFC 3339 time the order must stop (it pauses)")
	f.StringVar(&c.FailurePolicy, "failure-policy", "", "Pause (default), RollbackFailed or RollbackAll")
	f.DurationVar(&c.ProgressDeadine, "progress-deadline", 0, "how long an app may make no progress before it fails (default 30m)")
	f.Int32Var(&c.RetentionDays, "retention-days", 0, "delete the order this many days after it finished (default: keep)")
	_ = cmd.RegisterFlagCompletionFunc("failure-policy", cobra.FixedCompletions([]string{"Pause", "RollbackFailed", "RollbackAll"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

var actHelp = map[cafev1alpha1.ReleaseActionType]string{
	cafev1alpha1.ActionApprove:  "Approve an order (not your own); it is Approved with the required number of distinct approvals",
	cafev1alpha1.ActionReject:   "Reject an order before it starts (it ends Cancelled)",
	cafev1alpha1.ActionStart:    "Start an approved order (it waits for its window to open)",
	cafev1alpha1.ActionPause:    "Pause a running order: no app starts, apps under way hold before their next pod operation",
	cafev1alpha1.ActionResume:   "Resume a paused order (a failed app gets another progress deadline)",
	cafev1alpha1.ActionConfirm:  "Confirm the next group of the apps waiting for a confirmation (--app: one app)",
	cafev1alpha1.ActionCancel:   "Cancel an order: apps not started never start",
	cafev1alpha1.ActionRollback: "Roll back every app the order changed, in reverse dependency order",
}

func newActCmd(o *Options, a cafev1alpha1.ReleaseActionType) *cobra.Command {
	ao := actOptions{Timeout: time.Minute}
	cmd := &cobra.Command{
		Use:               a.Verb() + " ORDER",
		Short:             actHelp[a],
		Example:           "  cafe release " + a.Verb() + " weekly --comment \"...\" -n shop",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.CompleteNames(orderKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.act(cmd.Context(), args[0], a, ao) },
	}
	cmd.Flags().StringVarP(&ao.Comment, "comment", "m", "", "why, kept in the audit trail")
	cmd.Flags().BoolVar(&ao.NoWait, "no-wait", false, "do not wait for CAFE to process the action")
	cmd.Flags().DurationVar(&ao.Timeout, "timeout", ao.Timeout, "how long to wait for CAFE to process the action")
	if a == cafev1alpha1.ActionConfirm {
		cmd.Flags().StringVar(&ao.App, "app", "", "confirm only this app's next group")
	}
	return cmd
}

func newGetCmd(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:               "get ORDER",
		Short:             "Show an order: approvals, window, apps with their from/to revisions and progress, conditions",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.CompleteNames(orderKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.get(cmd.Context(), args[0], output) },
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "print the object: yaml or json")
	return cmd
}

func newListCmd(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the orders of the namespace, newest first",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.list(cmd.Context()) },
	}
}

func newHistoryCmd(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:               "history ORDER",
		Short:             "Print an order's audit trail: who did what, when, with which effect",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.CompleteNames(orderKind),
		RunE:              func(cmd *cobra.Command, args []string) error { return o.history(cmd.Context(), args[0]) },
	}
}

func newStatsCmd(o *Options) *cobra.Command {
	var app string
	var since time.Duration
	cmd := &cobra.Command{
		Use:     "stats",
		Short:   "Per app over finished orders: success rate, mean and p95 release duration, rollbacks",
		Example: "  cafe release stats --since 720h -n shop\n  cafe release stats --app pay -n shop",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return o.stats(cmd.Context(), app, since) },
	}
	cmd.Flags().StringVar(&app, "app", "", "only this app")
	cmd.Flags().DurationVar(&since, "since", 0, "only orders created within this duration (e.g. 720h)")
	return cmd
}

// NewAuditCmd returns `cafe audit`.
func NewAuditCmd(streams genericiooptions.IOStreams) *cobra.Command {
	return NewAuditCmdWithOptions(NewOptions(streams))
}

// NewAuditCmdWithOptions returns `cafe audit` using o.
func NewAuditCmdWithOptions(o *Options) *cobra.Command {
	ao := auditOptions{CAFENamespace: install.Namespace}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Export and verify the signed audit trails of release orders",
		Long: `Each release order keeps an audit trail: one entry per state change and per
action, hash-chained (each hash covers the entry, the order's namespace, name
and UID, and the previous hash) and signed with an ed25519 key only CAFE's
controller holds, and a signed head: the trail's length and last hash.
export writes the entries and heads as JSON lines; verify recomputes every
chain, signature and head and names the first entry that was altered,
removed, reordered or copied from another order, or the trail that was
truncated or emptied, and says which key signed which entries. Pin the keys
at install time (export-keys) and verify against that file, not only
against the keys the cluster publishes now.`,
		Example: `  cafe audit export-keys > keys.pem            # at install time, and after each rotation
  cafe audit export --since 24h -n shop > audit.jsonl
  cafe audit verify -n shop --public-key keys.pem
  cafe audit verify -f audit.jsonl --public-key keys.pem
  cafe audit rotate-key                         # cafe-system admins: a new key, old ones kept`,
	}
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().BoolVarP(&ao.AllNamespaces, "all-namespaces", "A", false, "every namespace")
	export := &cobra.Command{
		Use:   "export [ORDER...]",
		Short: "Write the audit entries of the orders (all of the namespace by default) as JSON lines",
		RunE:  func(cmd *cobra.Command, args []string) error { return o.export(cmd.Context(), args, ao) },
	}
	export.Flags().DurationVar(&ao.Since, "since", 0, "only entries within this duration (e.g. 24h)")
	verify := &cobra.Command{
		Use:   "verify [ORDER...]",
		Short: "Recompute the chains and signatures; name the first altered, removed or reordered entry",
		RunE:  func(cmd *cobra.Command, args []string) error { return o.verify(cmd.Context(), args, ao) },
	}
	verify.Flags().StringVarP(&ao.File, "filename", "f", "", "verify an export (full trails, without --since) instead of the cluster; - for stdin")
	verify.Flags().StringVar(&ao.PublicKey, "public-key", "", "keys to trust: a PEM file from export-keys, a base64 ed25519 key, or a file holding one (default: the keys the cluster publishes)")
	exportKeys := &cobra.Command{
		Use:   "export-keys",
		Short: "Write every published audit public key (current and retired) as PEM, to pin for verify --public-key",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.exportKeys(cmd.Context(), ao) },
	}
	rotate := &cobra.Command{
		Use:   "rotate-key",
		Short: "Replace the audit signing key; earlier keys stay published so old trails still verify",
		Long: `rotate-key publishes a new public key as current in the ConfigMap
cafe-audit-public-key (earlier keys stay there as retired.<ID>.pub), then
replaces the Secret cafe-audit-signing-key. The controller picks the new
key up within a minute, without a restart. It needs update on that
ConfigMap and delete and create on that Secret in CAFE's namespace (a
cafe-system admin). Run export-keys afterwards and hand the file to the
auditors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.rotateKey(cmd.Context(), ao) },
	}
	for _, c := range []*cobra.Command{verify, exportKeys, rotate} {
		c.Flags().StringVar(&ao.CAFENamespace, "cafe-namespace", ao.CAFENamespace, "namespace CAFE runs in (holds the keys)")
	}
	cmd.AddCommand(export, verify, exportKeys, rotate)
	return cmd
}
