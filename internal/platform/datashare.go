package platform

import (
	"context"
	"fmt"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
)

// DataAgent is where the data agent runs.
type DataAgent string

// Data agent placements.
const (
	DataAgentInProcess DataAgent = "inprocess"
	DataAgentExternal  DataAgent = "external"
)

// buildDatashare makes the fourth building block: the dataset catalog,
// access requests decided by the bank, and encrypted delivery. The data
// agent, the only component that reads plaintext, runs in-process unless
// the bank runs `causeway agent` on its own premises.
func (p *Platform) buildDatashare() error {
	var err error
	p.Datashare, err = datashare.New(p.DB, datashare.Options{
		// Ciphertext in PostgreSQL when nodes share it (any node takes an
		// agent's parts and serves downloads), in files under the data dir
		// on the embedded SQLite.
		Blobs:      datashare.DefaultBlobs(p.DB, p.cfg.DataDir),
		Logger:     p.log.With("component", "datashare"),
		Notify:     p.Relay.Notify,
		Leader:     p.Lease.Held,
		AgentToken: p.cfg.DataAgentToken,
		// The catalog counts the sandbox generators' rows when it is read:
		// they read the sandbox bank, which lives in this database.
		Rows: agent.RowCounter{DB: p.DB},
	})
	if err != nil {
		return fmt.Errorf("datashare: %w", err)
	}
	if p.agentKey != nil {
		p.agent, err = agent.New(agent.Config{DB: p.DB, PseudonymKey: p.agentKey, Logger: p.log.With("component", "data-agent")})
	}
	return err
}

// startDatashare publishes the sandbox's datasets, in sandbox mode, and
// runs the sweep of expired access and the in-process agent.
func (p *Platform) startDatashare(ctx context.Context) error {
	if p.cfg.Mode == ModeSandbox {
		sets, err := agent.SandboxDatasets(ctx, p.DB)
		if err != nil {
			return fmt.Errorf("sandbox datasets: %w", err)
		}
		// The sandbox's datasets are the bank's own process, not an
		// operator's decision: they leave no audit entry.
		bank := auth.WithCaller(ctx, auth.BankProcess())
		for _, n := range sets {
			if _, _, err := p.Datashare.EnsureDataset(bank, n); err != nil {
				return fmt.Errorf("sandbox datasets: %w", err)
			}
		}
	}
	p.background(p.Datashare.Run)
	if p.agent != nil {
		p.background(func(ctx context.Context) error { return p.Datashare.RunProducer(ctx, p.agent) })
	}
	return nil
}
