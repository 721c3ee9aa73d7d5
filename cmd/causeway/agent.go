package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/store"
)

// newAgentCommand is `causeway agent`: the data agent on the bank's
// premises.
func newAgentCommand() *cobra.Command {
	var (
		remote      agent.Remote
		agentDir    string
		key         string
		allowDirs   []string
		databaseURL string
		bankDataDir string
		logLevel    string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the data agent: read the bank's data, encrypt it to each approved requester, upload only ciphertext",
		Long: `Run the data agent on the bank's premises. It connects out to the hub (nothing
connects in), polls for approved dataset access requests, reads each
dataset's rows, encrypts them with age to the requester's public key as it
reads, and uploads the ciphertext. The hub never sees plaintext.

--token is the bank's admin token, or the hub's dedicated data agent token
(which opens only the agent's routes). Customer and account ids are replaced
by keyed hashes under a pseudonym key kept in --agent-dir (made on first
start; keep it, and give every agent of the bank the same one).

Built-in sandbox datasets read the bank's database (--database-url, or
--bank-data-dir for an embedded SQLite node's data dir); file datasets are
read only from under --allow-dir. Every flag has an environment variable:
CAUSEWAY_ plus the flag name in capitals with dashes as underscores.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd.Flags()); err != nil {
				return err
			}
			if remote.Hub == "" || remote.Token == "" {
				return errors.New("--hub and --token are required")
			}
			remote.Hub = strings.TrimRight(remote.Hub, "/")
			log, err := newLogger(logLevel)
			if err != nil {
				return fmt.Errorf("log-level: %w", err)
			}
			pk, err := agent.LoadKey(key, agentDir)
			if err != nil {
				return err
			}
			cfg := agent.Config{PseudonymKey: pk, AllowedDirs: splitList(allowDirs), Logger: log}
			if cfg.DB, err = openBankDB(cmd.Context(), databaseURL, bankDataDir); err != nil {
				return err
			}
			if cfg.DB != nil {
				defer cfg.DB.Close()
			}
			if remote.Agent, err = agent.New(cfg); err != nil {
				return err
			}
			remote.Logger = log
			return remote.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&remote.Hub, "hub", "", "the hub's base URL, e.g. https://causeway.bank.example")
	f.StringVar(&remote.Token, "token", "", "the bank's admin token, or the hub's data agent token")
	f.StringVar(&agentDir, "agent-dir", "./causeway-agent", "directory for the agent's pseudonym key")
	f.StringVar(&key, "pseudonym-key", "", "base64 32-byte pseudonym key; empty means <agent-dir>/"+agent.KeyFile)
	f.StringSliceVar(&allowDirs, "allow-dir", nil, "directory that file datasets may be read from (repeat, or comma-separate)")
	f.StringVar(&databaseURL, "database-url", "", "the bank's PostgreSQL, for the sandbox datasets")
	f.StringVar(&bankDataDir, "bank-data-dir", "", "data dir of an embedded (SQLite) node, for the sandbox datasets")
	f.DurationVar(&remote.Poll, "poll", 5*time.Second, "pause between polls when there is no work")
	f.BoolVar(&remote.Once, "once", false, "work the jobs waiting now, then exit")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// openBankDB opens the bank's database for the sandbox datasets: the
// PostgreSQL at databaseURL, or the SQLite file of an embedded node's data
// dir; nil with neither.
func openBankDB(ctx context.Context, databaseURL, bankDataDir string) (*store.DB, error) {
	switch {
	case databaseURL != "" && bankDataDir != "":
		return nil, errors.New("give --database-url or --bank-data-dir, not both")
	case databaseURL != "":
		db, err := store.Open(ctx, store.Config{URL: databaseURL})
		if err != nil {
			return nil, fmt.Errorf("bank database: %w", err)
		}
		return db, nil
	case bankDataDir != "":
		if _, err := os.Stat(filepath.Join(bankDataDir, "causeway.db")); err != nil {
			return nil, fmt.Errorf("bank data dir: %w", err)
		}
		db, err := store.Open(ctx, store.Config{DataDir: bankDataDir})
		if err != nil {
			return nil, fmt.Errorf("bank database: %w", err)
		}
		return db, nil
	}
	return nil, nil
}

// splitList reads a list flag: each value may itself be comma-separated;
// parts are trimmed and empty ones dropped.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
