package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/datashare/dataclient"
)

// newDataKeygenCommand is `causeway data keygen`.
func newDataKeygenCommand() *cobra.Command {
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Make an age key pair: the identity file (mode 0600) and, printed, the recipient to request with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, _ := cmd.Flags().GetString("output")
			recipient, err := dataclient.Keygen(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote your identity to %s (keep it secret); your recipient:\n", out)
			fmt.Fprintln(cmd.OutOrStdout(), recipient)
			return nil
		},
	}
	keygen.Flags().StringP("output", "o", "key.txt", "identity file to write (refuses to overwrite)")
	return keygen
}
