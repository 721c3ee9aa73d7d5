package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
)

// newDataCommand is `causeway data`: the data scientist's side of data
// partnering.
func newDataCommand() *cobra.Command {
	var (
		server string
		cred   dataclient.Credentials
		asJSON bool
	)
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
	pf.StringVar(&server, "server", "http://localhost:8080", "the platform's base URL")
	pf.StringVar(&cred.ClientID, "client-id", "", "your app's client id")
	pf.StringVar(&cred.ClientSecret, "client-secret", "", "your app's client secret")
	pf.StringVar(&cred.Token, "access-token", "", "an access token with data:read, instead of client credentials")
	pf.BoolVar(&asJSON, "json", false, "print results as JSON")

	connect := func(cmd *cobra.Command) (*dataclient.Client, error) {
		if err := envDefaults(cmd.Flags()); err != nil {
			return nil, err
		}
		return dataclient.New(cmd.Context(), server, cred)
	}
	printRequest := func(w io.Writer, r *datashare.AccessRequest) error {
		if asJSON {
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

	datasets := &cobra.Command{
		Use:   "datasets",
		Short: "List the dataset catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			all, err := c.Datasets(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
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

	var req datashare.NewAccessRequest
	var identity string
	request := &cobra.Command{
		Use:   "request",
		Short: "Ask the bank for access to a dataset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect(cmd)
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
			return printRequest(cmd.OutOrStdout(), r)
		},
	}
	rf := request.Flags()
	rf.StringVar(&req.DatasetID, "dataset", "", "dataset id (ds_…) or name")
	rf.StringVar(&req.Purpose, "purpose", "", "what the data is for (required)")
	rf.IntVar(&req.DurationDays, "days", 30, "how long access is asked for, 1 to 365 days")
	rf.StringVar(&req.Recipient, "recipient", "", "age recipient (age1…) to encrypt to")
	rf.StringVar(&identity, "identity", "", "age identity file whose recipient to encrypt to")
	rf.StringVar(&req.Format, "format", "", "csv (default) or jsonl")

	status := &cobra.Command{
		Use:   "status <request-id>",
		Short: "Show an access request: the bank's decision, expiry, prepared content",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			r, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printRequest(cmd.OutOrStdout(), r)
		},
	}

	var (
		pullOpts     dataclient.PullOptions
		identityFile string
		progress     string
	)
	pull := &cobra.Command{
		Use:   "pull <request-id>",
		Short: "Download an approved dataset (resuming an interrupted download) and decrypt it locally",
		Long: `Download an approved dataset and decrypt it locally. The ciphertext goes to
<output>.age.part first: an interrupted pull resumes from there (with a Range
request that only continues if the content did not change). The download is
checked against its ETag (SHA-256), then decrypted to a temporary file that
becomes <output> only when decryption and authentication succeed; damaged or
tampered content fails and leaves no output.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect(cmd)
			if err != nil {
				return err
			}
			if identityFile == "" {
				return errors.New("--identity (-i) is required")
			}
			if pullOpts.Identities, err = dataclient.ReadIdentities(identityFile); err != nil {
				return err
			}
			if pullOpts.Output == "" {
				pullOpts.Output = args[0] + "." + datashare.FormatCSV
				if pullOpts.Format != "" {
					pullOpts.Output = args[0] + "." + pullOpts.Format
				}
			}
			stderr := cmd.ErrOrStderr()
			switch progress {
			case "always":
				pullOpts.Progress = dataclient.NewBar(stderr, args[0])
			case "auto":
				if isTerminal(stderr) {
					pullOpts.Progress = dataclient.NewBar(stderr, args[0])
				}
			case "never":
			default:
				return fmt.Errorf("--progress %q: want auto, always or never", progress)
			}
			pullOpts.OnWait = func(d time.Duration) {
				fmt.Fprintf(stderr, "the bank's data agent is preparing the content; retrying in %s\n", d.Round(time.Second))
			}
			res, err := c.Pull(cmd.Context(), args[0], pullOpts)
			if err != nil {
				return err
			}
			resumed := ""
			if res.Resumed {
				resumed = ", resumed"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d bytes decrypted from %d bytes of ciphertext (ETag %s%s)\n",
				pullOpts.Output, res.PlaintextBytes, res.CiphertextBytes, res.ETag, resumed)
			return nil
		},
	}
	pl := pull.Flags()
	pl.StringVarP(&identityFile, "identity", "i", "", "age identity file (from keygen)")
	pl.StringVarP(&pullOpts.Output, "output", "o", "", "plaintext file to write; default <request-id>.<format>")
	pl.StringVar(&pullOpts.Format, "format", "", "csv or jsonl; default the request's format")
	pl.DurationVar(&pullOpts.Wait, "wait", 10*time.Minute, "how long to wait while the bank's data agent prepares the content")
	pl.StringVar(&progress, "progress", "auto", "progress bar: auto (when standard error is a terminal), always or never")

	cmd.AddCommand(keygen, datasets, request, status, pull)
	return cmd
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
