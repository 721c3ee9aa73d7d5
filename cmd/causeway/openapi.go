package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/platform"
)

// newOpenAPICommand is `causeway openapi`: the OpenAPI document a node
// serves at /openapi.json, without running one.
func newOpenAPICommand() *cobra.Command {
	var (
		cfg    platform.Config
		output string
	)
	cmd := &cobra.Command{
		Use:   "openapi",
		Short: "Print the OpenAPI 3.1 document a node serves at /openapi.json",
		Long: `Print the OpenAPI 3.1 document that a node serves at GET /openapi.json, for
client generators and linters, without running a node: it builds one in this
process on a temporary data directory, asks it for the document and removes
it. The document names the node's URL as its server: give the --public-url
(or --addr) the node will have.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd.Flags()); err != nil {
				return err
			}
			var err error
			if cfg.Logger, err = newLogger("error"); err != nil {
				return err
			}
			cfg.Version = buildVersion()
			doc, err := platform.OpenAPI(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output != "" {
				return os.WriteFile(output, doc, 0o644)
			}
			_, err = cmd.OutOrStdout().Write(doc)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.PublicURL, "public-url", "", "the node's base URL, e.g. https://api.bank.example; empty means http://localhost:PORT from --addr")
	f.StringVar(&cfg.Addr, "addr", platform.DefaultAddr, "the node's HTTP listen address")
	f.StringVarP(&output, "output", "o", "", "write the document to this file instead of standard output")
	return cmd
}
