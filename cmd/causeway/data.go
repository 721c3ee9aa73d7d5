package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
)

// dataCLI is what every `causeway data` subcommand shares: the platform
// to call, how to authenticate, and whether to print JSON.
type dataCLI struct {
	server string
	cred   dataclient.Credentials
	asJSON bool
}

// newDataCommand is `causeway data`: the data scientist's side of data
// partnering. Each subcommand is in a file of its own (data_*.go).
func newDataCommand() *cobra.Command {
	d := &dataCLI{}
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Request and download datasets, encrypted end to end to your own key",
		Long: `Request datasets from the bank and download them, encrypted end to end:

  causeway data keygen -o key.txt                  # prints your recipient (age1…)
  causeway data datasets                           # the catalog
  causeway data request --dataset ds_… --purpose "…" --days 30 --identity key.txt
  causeway data status dar_…                       # wait for the bank's approval
  causeway data pull dar_… -i key.txt -o data.csv  # download, resume, decrypt

The platform only ever holds the ciphertext; the standard age tool decrypts
it too (age -d -i key.txt). Calls authenticate as an app with data:read:
--client-id and --client-secret (or CAUSEWAY_CLIENT_ID, CAUSEWAY_CLIENT_SECRET),
or --access-token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&d.server, "server", "http://localhost:8080", "the platform's base URL")
	pf.StringVar(&d.cred.ClientID, "client-id", "", "your app's client id")
	pf.StringVar(&d.cred.ClientSecret, "client-secret", "", "your app's client secret")
	pf.StringVar(&d.cred.Token, "access-token", "", "an access token with data:read, instead of client credentials")
	pf.BoolVar(&d.asJSON, "json", false, "print results as JSON")
	cmd.AddCommand(newDataKeygenCommand(), d.datasetsCommand(), d.requestCommand(), d.statusCommand(), d.pullCommand())
	return cmd
}

// connect reads the environment's defaults and signs in.
func (d *dataCLI) connect(cmd *cobra.Command) (*dataclient.Client, error) {
	if err := envDefaults(cmd.Flags()); err != nil {
		return nil, err
	}
	return dataclient.New(cmd.Context(), d.server, d.cred)
}

// printRequest prints an access request, as a table or as JSON.
func (d *dataCLI) printRequest(w io.Writer, r *datashare.AccessRequest) error {
	if d.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\n", r.ID)
	fmt.Fprintf(tw, "dataset\t%s (%s, version %s)\n", r.DatasetName, r.DatasetID, r.DatasetVersion)
	fmt.Fprintf(tw, "status\t%s\n", r.Status)
	fmt.Fprintf(tw, "format\t%s\n", r.Format)
	fmt.Fprintf(tw, "duration\t%d days\n", r.DurationDays)
	if r.DecidedAt != nil {
		fmt.Fprintf(tw, "decided\t%s by %s%s\n", r.DecidedAt.Format(time.RFC3339), r.DecidedBy, reason(r.Reason))
	}
	if r.ExpiresAt != nil {
		fmt.Fprintf(tw, "expires\t%s\n", r.ExpiresAt.Format(time.RFC3339))
	}
	if r.RevokedAt != nil {
		fmt.Fprintf(tw, "revoked\t%s by %s%s\n", r.RevokedAt.Format(time.RFC3339), r.RevokedBy, reason(r.RevokeReason))
	}
	for _, c := range r.Content {
		line := c.Status
		if c.Status == datashare.ContentReady {
			line += fmt.Sprintf(", %d bytes, ETag %s", c.Size, c.ETag)
		}
		if c.Error != "" {
			line += ": " + c.Error
		}
		fmt.Fprintf(tw, "content %s\t%s\n", c.Format, line)
	}
	return tw.Flush()
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
