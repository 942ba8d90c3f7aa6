package logincmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/objectdirectory"
)

// NewIAMCmd is `cafe iam`: helpers for CAFE's own directory of IAMUsers
// and IAMGroups (docs/iam.md).
func NewIAMCmd(streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "iam",
		Short: "Manage the accounts of CAFE's own directory (IAMUsers and IAMGroups)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newHashPasswordCmd(streams))
	return cmd
}

func newHashPasswordCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{streams: streams, user: "the new account"}
	cmd := &cobra.Command{
		Use:   "hash-password [--password-stdin]",
		Short: "Print the bcrypt hash of a password, for the \"bcrypt\" key of an IAMUser's password Secret",
		Example: `  cafe iam hash-password --password-stdin < alice.pw \
    | kubectl -n cafe-system create secret generic alice-password --from-file=bcrypt=/dev/stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := o.readPassword()
			if err != nil {
				return err
			}
			hash, err := objectdirectory.HashPassword([]byte(password))
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(o.streams.Out, string(hash))
			return err
		},
	}
	cmd.Flags().BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of standard input; otherwise it is asked for on the terminal")
	return cmd
}
