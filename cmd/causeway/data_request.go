package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
)

// requestCommand is `causeway data request`.
func (d *dataCLI) requestCommand() *cobra.Command {
	var req datashare.NewAccessRequest
	var identity string
	request := &cobra.Command{
		Use:   "request",
		Short: "Ask the bank for access to a dataset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := d.connect(cmd)
			if err != nil {
				return err
			}
			switch {
			case req.Recipient != "" && identity != "":
				return errors.New("give --recipient or --identity, not both")
			case identity != "":
				if req.Recipient, err = dataclient.RecipientOf(identity); err != nil {
					return err
				}
			case req.Recipient == "":
				return errors.New("--recipient (age1…) or --identity (key file) is required")
			}
			if req.DatasetID != "" && !strings.HasPrefix(req.DatasetID, "ds_") {
				// A name: look it up.
				all, err := c.Datasets(cmd.Context())
				if err != nil {
					return err
				}
				for _, d := range all {
					if d.Name == req.DatasetID {
						req.DatasetID = d.ID
					}
				}
			}
			r, err := c.Request(cmd.Context(), req)
			if err != nil {
				return err
			}
			return d.printRequest(cmd.OutOrStdout(), r)
		},
	}
	rf := request.Flags()
	rf.StringVar(&req.DatasetID, "dataset", "", "dataset id (ds_…) or name")
	rf.StringVar(&req.Purpose, "purpose", "", "what the data is for (required)")
	rf.IntVar(&req.DurationDays, "days", 30, "how long access is asked for, 1 to 365 days")
	rf.StringVar(&req.Recipient, "recipient", "", "age recipient (age1…) to encrypt to")
	rf.StringVar(&identity, "identity", "", "age identity file whose recipient to encrypt to")
	rf.StringVar(&req.Format, "format", "", "csv (default) or jsonl")
	return request
}
