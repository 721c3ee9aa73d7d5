package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/demo"
)

// newDemoCommand is `causeway demo baas|empathetic`: the two stories as
// narrated, self-checking runs.
func newDemoCommand() *cobra.Command {
	var (
		server     string
		adminToken string
		wait       time.Duration
		timeout    time.Duration
		logLevel   string
	)
	cmd := &cobra.Command{
		Use:   "demo baas|empathetic",
		Short: "Run a story end to end, narrated: Banking as a Service (baas) or Empathetic banking (empathetic)",
		Long: `Run one of the two stories Causeway carries, end to end, with a narrated log
of every call, answer and event; exit 0 only if every step produced what it
should.

  baas        SolarWorld embeds a loan, KYC, an account and payments in its
              app, plugs its own fraud check into the bank's payments as an
              SPI, and pops up an offer when the bank's event arrives.
  empathetic  a branch camera's event reaches the bank officer's app, which
              pulls the customer's history, asks an outside intelligence
              provider through the accounts.lookup SPI, scores offers with a
              model trained on partnered data; later a marketing event
              reaches the customer's car and home devices.

Without --server the demo starts its own node in this process (SQLite and
NATS in a temporary directory, sandbox mode) and removes it afterwards.
With --server it runs against a running node in sandbox mode, acting as the
bank with --admin-token (or CAUSEWAY_ADMIN_TOKEN). The demo's own services
(webhook receivers, SPI endpoints) listen on 127.0.0.1, so that node must
run on this machine with --allow-private-targets 127.0.0.0/8:

  causeway serve --allow-private-targets 127.0.0.0/8 &
  causeway demo baas --server http://localhost:8080 \
      --admin-token "$(cat causeway-data/admin-token)"`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"baas", "empathetic"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := envDefaults(cmd.Flags()); err != nil {
				return err
			}
			story, ok := demo.Stories[args[0]]
			if !ok {
				return fmt.Errorf("unknown story %q: want baas or empathetic", args[0])
			}
			target := demo.Target{URL: server, AdminToken: adminToken}
			out := cmd.OutOrStdout()
			if server == "" {
				log, err := newLogger(logLevel)
				if err != nil {
					return fmt.Errorf("log-level: %w", err)
				}
				fmt.Fprintln(out, "starting an embedded Causeway node (SQLite and NATS in a temporary directory, sandbox mode) …")
				node, err := demo.StartEmbedded(cmd.Context(), buildVersion(), log)
				if err != nil {
					return err
				}
				defer node.Close()
				target = node.Target
			} else if adminToken == "" {
				return errors.New("--server needs the bank's admin token: give --admin-token or CAUSEWAY_ADMIN_TOKEN")
			}
			err := story(cmd.Context(), target, demo.Options{Out: out, Wait: wait, Timeout: timeout})
			var f *demo.Failure
			if errors.As(err, &f) {
				// The narration on standard output says what was
				// expected and what came.
				return fmt.Errorf("demo %s failed at: %s", args[0], f.Step)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "base URL of a running node (default: start an embedded one)")
	f.StringVar(&adminToken, "admin-token", "", "the bank admin token of --server (env CAUSEWAY_ADMIN_TOKEN)")
	f.DurationVar(&wait, "wait", 30*time.Second, "longest wait for each event or prepared dataset")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "longest the whole story may take")
	f.StringVar(&logLevel, "log-level", "warn", "log level of the embedded node's logs on standard error")
	return cmd
}
