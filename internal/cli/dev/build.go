package dev

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/controlplane"
)

func newBuildCmd(streams genericiooptions.IOStreams) *cobra.Command {
	p := &paths{}
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok into bin/ (skips what is current)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.resolve(); err != nil {
				return err
			}
			if p.SourceDir == "" {
				return fmt.Errorf("building needs the CAFE source tree: pass --source-dir")
			}
			if err := controlplane.EnsureBinaries(cmd.Context(), controlplane.BuildOptions{RepoRoot: p.SourceDir, BinDir: p.BinDir, Out: streams.ErrOut}); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "control-plane binaries are current in %s\n", p.BinDir)
			return nil
		},
	}
	p.addFlags(cmd)
	_ = cmd.Flags().MarkHidden("state-dir")
	return cmd
}
