// Command cafe is CAFE's single binary: the controller manager, the local
// development control plane and the operator CLI. Installed under the name
// kubectl-cafe it is also a kubectl plugin (`kubectl cafe …`).
package main

import (
	"os"
	"path/filepath"

	"github.com/cafe-io/cafe/internal/cli"
)

func main() {
	cmd := cli.NewRootCmd(filepath.Base(os.Args[0]), cli.StdStreams())
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
