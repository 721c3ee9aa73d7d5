package platform

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/outbox"
)

// SandboxSeed makes the installation's sandbox the same on every fresh
// start, so demos and docs can rely on it.
const SandboxSeed = 20261125

// outboxEvents is the sandbox bank's EventWriter: the transactional outbox.
type outboxEvents struct {
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
			AppID: e.AppID, CustomerID: e.CustomerID,
		})
	}
	if err := outbox.Append(ctx, tx, out...); err != nil {
		return err
	}
	// The relay polls anyway; the nudge only shortens the wait. It may run
	// before this transaction commits, in which case the next poll finds
	// the rows.
	o.relay.Notify()
	return nil
}
