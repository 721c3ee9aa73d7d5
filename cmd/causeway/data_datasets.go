package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// datasetsCommand is `causeway data datasets`.
func (d *dataCLI) datasetsCommand() *cobra.Command {
	datasets := &cobra.Command{
		Use:   "datasets",
		Short: "List the dataset catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := d.connect(cmd)
			if err != nil {
				return err
			}
			all, err := c.Datasets(cmd.Context())
			if err != nil {
				return err
			}
			if d.asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "id\tname\tversion\trows\tformats\tcolumns")
			for _, d := range all {
				var cols []string
				for _, col := range d.Columns {
					cols = append(cols, col.Name)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Name, d.Version, d.RowCount, strings.Join(d.Formats, ","), strings.Join(cols, ","))
			}
			return tw.Flush()
		},
	}
	return datasets
}
