package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
)

// pullCommand is `causeway data pull`.
func (d *dataCLI) pullCommand() *cobra.Command {
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
			c, err := d.connect(cmd)
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
	return pull
}
