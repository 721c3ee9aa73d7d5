package platform

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
)

// SandboxSeed makes the installation's sandbox the same on every fresh
// start, so demos and docs can rely on it.
const SandboxSeed = 20261125

// outboxEvents is the sandbox bank's EventWriter: the transactional outbox.
type outboxEvents struct {
	db    *store.DB
	relay *outbox.Relay
}

func (o outboxEvents) WriteEvents(ctx context.Context, tx *sql.Tx, events []core.Event) error {
	out := make([]outbox.Event, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return err
		}
		out = append(out, outbox.Event{
			Type: e.Type, Source: core.EventSource, Subject: e.Subject, Data: data,
			CustomerID: e.CustomerID,
		})
	}
	if err := outbox.Append(ctx, tx, out...); err != nil {
		return err
	}
	// The relay polls anyway; waking it once the rows are committed only
	// shortens the wait.
	o.db.AfterCommit(tx, o.relay.Notify)
	return nil
}

// auditTrail is the sandbox bank's AuditTrail: the platform's audit trail,
// in the transaction of the bank's decision.
type auditTrail struct{}

func (auditTrail) RecordChange(ctx context.Context, tx *sql.Tx, caller auth.Caller, c core.Change) error {
	return audit.Record(ctx, tx, audit.Change{Action: c.Action, TargetType: c.TargetType, TargetID: c.TargetID,
		Before: c.Before, After: c.After, By: caller})
}
