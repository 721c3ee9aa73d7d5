package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/store"
)

// Stream tickets.
//
// EventSource, the browser's client for Server-Sent Events, cannot send an
// Authorization header, and a long-lived token in a URL ends up in proxy
// logs and browser history. A stream ticket is what a web page puts in the
// URL instead: the app's back end asks for one with its access token (POST
// /v1/events/stream-tickets), hands it to the page, and the page opens
// EventSource on GET /v1/events/stream?ticket=…. A ticket
//
//   - lives StreamTicketTTL and works once: the request that presents it
//     consumes it (its row is deleted, DELETE … RETURNING, so of two
//     nodes given the same ticket exactly one accepts it), and every later
//     use is 401;
//   - is bound to the app that asked for it and carries the events:read
//     scope only, in the app's token generation at issue: suspending the
//     app kills its tickets as it kills its tokens;
//   - is stored as its SHA-256 only, in the database every node shares.

// StreamTicketTTL is how long a stream ticket may wait to be used.
const StreamTicketTTL = time.Minute

// streamTicketPrefix makes a leaked ticket recognisable.
const streamTicketPrefix = "cwst_"

// IssueStreamTicket issues a stream ticket, to be shown once, to app (as a
// credential of it presented it) for the event stream, and says when the
// ticket expires. app must hold events:read. Errors: EFORBIDDEN
// insufficient_scope; EUNAUTHORIZED app_inactive when the app is no
// longer active or was suspended since its credential was issued.
func (s *Service) IssueStreamTicket(ctx context.Context, app *auth.App) (ticket string, expiresAt time.Time, err error) {
	if !app.HasScope(auth.ScopeEventsRead) {
		return "", time.Time{}, causeway.Errorf(causeway.EFORBIDDEN, "insufficient_scope", "a stream ticket needs the scope %s", auth.ScopeEventsRead)
	}
	ticket = randomString(streamTicketPrefix, 32)
	now := s.now()
	expires := now.Add(StreamTicketTTL)
	var n int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// The app's row is read in the same statement: a ticket is issued
		// only to an app that is active in the credential's generation.
		res, err := tx.ExecContext(ctx, `INSERT INTO identity_stream_tickets (hash, app_id, client_id, generation, created_at, expires_at)
			SELECT $1, id, client_id, token_generation, $2, $3 FROM identity_apps
			WHERE id = $4 AND status = $5 AND deleted_at IS NULL AND token_generation = $6`,
			secretHash(ticket), store.Micros(now), store.Micros(expires), app.ID, auth.AppActive, app.Generation)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return "", time.Time{}, store.Classify(err)
	}
	if n == 0 {
		return "", time.Time{}, causeway.Errorf(causeway.EUNAUTHORIZED, "app_inactive", "the app is not active")
	}
	return ticket, expires, nil
}

func errInvalidTicket() error {
	return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_ticket",
		"the stream ticket is unknown or was used already; a ticket works once: get a new one from POST /v1/events/stream-tickets")
}

// AuthenticateTicket consumes a stream ticket and returns the app it was
// issued to, with the events:read scope only. Errors, all EUNAUTHORIZED:
// invalid_ticket (unknown, or used already), ticket_expired, app_inactive,
// token_revoked (the app was suspended since the ticket was issued).
func (s *Service) AuthenticateTicket(ctx context.Context, ticket string) (*auth.App, error) {
	if !strings.HasPrefix(ticket, streamTicketPrefix) || len(ticket) > 128 {
		return nil, errInvalidTicket()
	}
	var clientID string
	var generation, expires int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM identity_stream_tickets WHERE hash = $1
			RETURNING client_id, generation, expires_at`, secretHash(ticket)).Scan(&clientID, &generation, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errInvalidTicket()
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if !s.now().Before(store.FromMicros(expires)) {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "ticket_expired",
			"the stream ticket expired; a ticket is good for %d seconds: get a new one from POST /v1/events/stream-tickets", int(StreamTicketTTL.Seconds()))
	}
	return s.appOf(ctx, clientID, generation, []string{auth.ScopeEventsRead})
}

// Jobs are identity's periodic jobs for the cluster's leader: pruning
// expired stream tickets, hourly.
func (s *Service) Jobs() []leader.Job {
	return []leader.Job{{Name: "prune expired stream tickets", Every: time.Hour, Do: func(ctx context.Context) (int64, error) {
		return s.PruneStreamTickets(ctx, s.now())
	}}}
}

// PruneStreamTickets deletes the tickets that expired before now, used
// or not, and says how many it deleted.
func (s *Service) PruneStreamTickets(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM identity_stream_tickets WHERE expires_at <= $1`, store.Micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, store.Classify(err)
}
