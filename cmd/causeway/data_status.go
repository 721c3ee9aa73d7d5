package main

import (
	"github.com/spf13/cobra"
)

// statusCommand is `causeway data status`.
func (d *dataCLI) statusCommand() *cobra.Command {
	status := &cobra.Command{
		Use:   "status <request-id>",
		Short: "Show an access request: the bank's decision, expiry, prepared content",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := d.connect(cmd)
			if err != nil {
				return err
			}
			r, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return d.printRequest(cmd.OutOrStdout(), r)
		},
	}
	return status
}
