// Package dev implements `cafe dev`: the embedded local control plane for a
// laptop, a demo and CAFE's own tests.
package dev

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/controlplane"
)

// DefaultStateDir is where `cafe dev up` keeps certificates, etcd data,
// kubeconfigs and logs, relative to the working directory.
const DefaultStateDir = ".cafe/dev"

// NewCmd returns `cafe dev` and its subcommands.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local Kubernetes control plane with simulated nodes and CAFE",
	}
	cmd.AddCommand(newUpCmd(streams), newDownCmd(streams), newBuildCmd(streams), newLoadCmd(streams), newEmulateCmd(streams))
	return cmd
}

// paths are the flags every dev subcommand shares.
type paths struct {
	StateDir  string
	BinDir    string
	SourceDir string
}

func (p *paths) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.StateDir, "state-dir", DefaultStateDir, "directory for certificates, etcd data, kubeconfigs and logs")
	cmd.Flags().StringVar(&p.BinDir, "bin-dir", "", "directory of the Kubernetes binaries (default: bin/ of the source tree)")
	cmd.Flags().StringVar(&p.SourceDir, "source-dir", "", "CAFE source tree to build missing binaries from (default: found above the working directory)")
}

// resolve fills the defaults: the source tree above the working directory
// and its bin/ directory.
func (p *paths) resolve() error {
	if p.SourceDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if root, err := controlplane.FindRepoRoot(wd); err == nil {
			p.SourceDir = root
		}
	}
	if p.BinDir == "" {
		if p.SourceDir == "" {
			return errMissingBinDir
		}
		p.BinDir = filepath.Join(p.SourceDir, "bin")
	}
	var err error
	p.BinDir, err = filepath.Abs(p.BinDir)
	return err
}
