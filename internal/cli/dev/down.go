package dev

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/controlplane"
)

func newDownCmd(streams genericiooptions.IOStreams) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a running local control plane (if any) and remove its state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(stateDir)
			if err != nil {
				return err
			}
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				fmt.Fprintf(streams.Out, "nothing to remove: %s does not exist\n", dir)
				return nil
			}
			stopped, err := controlplane.Down(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if stopped != 0 {
				fmt.Fprintf(streams.Out, "stopped cafe dev up (pid %d)\n", stopped)
			}
			fmt.Fprintf(streams.Out, "removed %s\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", DefaultStateDir, "state directory of the control plane to remove")
	return cmd
}
