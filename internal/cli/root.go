// Package cli wires CAFE's cobra command tree. Each verb group lives in its
// own package exposing NewCmd; this package only assembles them.
package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/cli/agentcmd"
	"github.com/cafe-io/cafe/internal/cli/app"
	"github.com/cafe-io/cafe/internal/cli/deploy"
	"github.com/cafe-io/cafe/internal/cli/dev"
	"github.com/cafe-io/cafe/internal/cli/host"
	"github.com/cafe-io/cafe/internal/cli/logincmd"
	"github.com/cafe-io/cafe/internal/cli/managercmd"
	"github.com/cafe-io/cafe/internal/cli/release"
	"github.com/cafe-io/cafe/internal/version"
)

// StdStreams are the process's standard streams.
func StdStreams() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

// NewRootCmd returns the root command. invokedAs is the program name; as
// kubectl-cafe, help and examples read `kubectl cafe`.
func NewRootCmd(invokedAs string, streams genericiooptions.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "cafe",
		Short:         "CAFE: auditable, grouped, lossless releases on Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: false,
		Version:       version.String(),
	}
	if strings.HasPrefix(invokedAs, "kubectl-") {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl cafe"}
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetIn(streams.In)

	root.AddGroup(
		&cobra.Group{ID: "run", Title: "Run CAFE:"},
		&cobra.Group{ID: "release", Title: "Release:"},
		&cobra.Group{ID: "hosts", Title: "Classic hosts:"},
		&cobra.Group{ID: "access", Title: "Access:"},
	)
	addToGroup(root, "run", dev.NewCmd(streams), managercmd.NewCmd(streams))
	addToGroup(root, "release", deploy.NewCmd(streams), app.NewCmd(streams), release.NewCmd(streams), release.NewAuditCmd(streams))
	addToGroup(root, "hosts", host.NewCmd(streams), agentcmd.NewCmd(streams))
	addToGroup(root, "access", logincmd.NewCmd(streams), logincmd.NewCredentialCmd(streams), logincmd.NewIAMCmd(streams))
	return root
}

// addToGroup adds cmds to root, listed in its help under group.
func addToGroup(root *cobra.Command, group string, cmds ...*cobra.Command) {
	for _, c := range cmds {
		c.GroupID = group
		root.AddCommand(c)
	}
}
