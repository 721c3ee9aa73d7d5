package platform

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

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
	// The relay polls anyway; the nudges only shorten the wait. This runs
	// before the transaction commits, so a relay woken now may find nothing
	// yet: a second nudge a moment later catches the commit in almost every
	// case instead of leaving the event for the next poll.
	o.relay.Notify()
	time.AfterFunc(3*time.Millisecond, o.relay.Notify)
	return nil
}
